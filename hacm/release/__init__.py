"""hacm beside the authors' code: their models built from a user's checkout, the one key map from their
state dicts to hacm's, the weight-level verifier (`python -m hacm.release verify`) and their published
weights as evaluation encoders. hacm ships none of their code. This package's __init__ and
`hacm.release.kinds` are torch-free: the workflow and the tables read them.
"""
