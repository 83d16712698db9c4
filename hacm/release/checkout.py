"""The authors' models, built in this process from a user's checkout of their repository.

hacm ships none of their code: each model class is imported, at run time, from the files of the
checkout the user names.

- The release (a git clone of YinxPeng/HA-CM-main). HEAD's `model_hacm/transformer.py` calls a method,
  `mask_hyper_matrix`, that exists there only as compiled bytecode, and imports `.drop`, which
  model_hacm/ also has only as bytecode. So the method's source is taken from the checkout's own history
  (`model_mamp/transformer.py` at commit 5755d8a) and added to the class; drop.py comes from HEAD's
  model/. Nothing else is changed. The evaluation model is HEAD's `model/transformer.py`.
- MAMP (maoyunyao/MAMP, a clone or an unpacked archive): `model_mamp/`, `model_mae/` and the evaluation
  model `model/`, as the folder holds them.

Their constructors print the patch sizes; the prints are swallowed.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import io
import itertools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import torch

RELEASE_REPO = "YinxPeng/HA-CM-main"
MAMP_REPO = "maoyunyao/MAMP"
RELEASE_MODEL = "model_hacm/transformer.py"
RELEASE_EVAL_MODEL = "model/transformer.py"
RELEASE_DROP = "model/drop.py"  # model_hacm/ has drop.py only as bytecode; model/ has its source
MASK_METHOD, MASK_SOURCE, MASK_COMMIT = "mask_hyper_matrix", "model_mamp/transformer.py", "5755d8a"
# The release's config/ntu60_xsub_joint/pretrain_hacm.yaml (model_args, mask_ratio, motion_aware_tau).
RELEASE_MODEL_ARGS = dict(dim_in=3, dim_feat=256, decoder_dim_feat=256, depth=8, decoder_depth=3, num_heads=8,
                          mlp_ratio=4, num_frames=72, num_joints=18, patch_size=1, t_patch_size=3, qkv_bias=True,
                          qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0,
                          norm_skes_loss=True)
RELEASE_FORWARD = dict(mask_ratio=0.9, motion_stride=1, motion_aware_tau=0.80)
# MAMP's config/ntu60_xsub_joint/pretrain_{mamp,mae}_t120_layer8+3_mask90.yaml.
MAMP_MODEL_ARGS = dict(dim_in=3, dim_feat=256, decoder_dim_feat=256, depth=8, decoder_depth=3, num_heads=8,
                       mlp_ratio=4, num_frames=120, num_joints=25, patch_size=1, t_patch_size=4, qkv_bias=True,
                       qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, norm_skes_loss=True)
MAMP_FORWARD = {"mamp": dict(mask_ratio=0.9, motion_stride=1, motion_aware_tau=0.80), "mae": dict(mask_ratio=0.9)}
MAMP_PACKAGES = {"mamp": "model_mamp", "mae": "model_mae"}
MAMP_EVAL_PACKAGE = "model"
# The pretraining arguments the evaluation models do not take.
_PRETRAIN_ONLY_ARGS = ("decoder_dim_feat", "decoder_depth", "norm_skes_loss")

_packages = itertools.count()


class ReleaseError(RuntimeError):
    """A one-line reason the authors' models cannot be built (or a comparison cannot run)."""


def _git(checkout: Path, *args: str) -> subprocess.CompletedProcess:
    if shutil.which("git") is None:
        raise ReleaseError("git is not installed; it reads the release's files from its checkout")
    return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)


def git_show(checkout: Path, revision: str, path: str) -> str:
    result = _git(checkout, "show", f"{revision}:{path}")
    if result.returncode:
        reason = (result.stderr.strip().splitlines() or ["git show failed"])[-1]
        raise ReleaseError(f"{checkout}: cannot read {path} at {revision} ({reason}); "
                           f"is it a full clone of {RELEASE_REPO}?")
    return result.stdout


def method_source(module_text: str, name: str) -> str:
    """The source of the first method called `name` in a class of `module_text`, dedented to top level."""
    tree = ast.parse(module_text)
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    lines = module_text.splitlines()[item.lineno - 1: item.end_lineno]
                    indent = len(lines[0]) - len(lines[0].lstrip())
                    return "\n".join(line[indent:] for line in lines) + "\n"
    raise ReleaseError(f"no method {name} in the given file")


def check_release_checkout(path: Path) -> Path:
    """`path`, checked to be the top of a git clone of the release with the history the models need."""
    path = Path(path)
    if not path.is_dir():
        raise ReleaseError(f"{path} is not a folder (git clone https://github.com/{RELEASE_REPO})")
    top = _git(path, "rev-parse", "--show-toplevel")
    if top.returncode or Path(top.stdout.strip()).resolve() != path.resolve():
        raise ReleaseError(f"{path} is not a git checkout of {RELEASE_REPO} "
                           f"(git clone https://github.com/{RELEASE_REPO}; an unpacked archive lacks the history "
                           f"that holds {MASK_METHOD})")
    for revision, file in (("HEAD", RELEASE_MODEL), ("HEAD", RELEASE_EVAL_MODEL), ("HEAD", RELEASE_DROP),
                           (MASK_COMMIT, MASK_SOURCE)):
        if _git(path, "cat-file", "-e", f"{revision}:{file}").returncode:
            raise ReleaseError(f"{path}: no {file} at {revision}; is it a full clone of {RELEASE_REPO}?")
    return path


def check_mamp_checkout(path: Path) -> Path:
    """`path`, checked to hold MAMP's model packages."""
    path = Path(path)
    if not path.is_dir():
        raise ReleaseError(f"{path} is not a folder (git clone https://github.com/{MAMP_REPO})")
    for package in (*MAMP_PACKAGES.values(), MAMP_EVAL_PACKAGE):
        for file in ("transformer.py", "drop.py"):
            if not (path / package / file).is_file():
                raise ReleaseError(f"{path}: no {package}/{file}; is it a checkout of {MAMP_REPO}?")
    return path


def _import_package(label: str, files: dict[str, str], workdir: Path | None = None) -> ModuleType:
    """The `transformer` module of a package made of `files` (module name -> source), imported under a
    name of its own (two checkouts, or two calls, never share a module) and then forgotten by sys.modules."""
    name = f"_hacm_{label}_{next(_packages)}"
    with tempfile.TemporaryDirectory(dir=workdir) as folder:
        package = Path(folder) / name
        package.mkdir()
        (package / "__init__.py").write_text("")
        for module, text in files.items():
            (package / f"{module}.py").write_text(text)
        sys.path.insert(0, folder)
        try:
            return importlib.import_module(f"{name}.transformer")
        except Exception as error:  # their code, not ours: say where it failed in one line
            raise ReleaseError(f"cannot import {label}'s transformer.py ({type(error).__name__}: {error})") from None
        finally:
            sys.path.remove(folder)
            for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[module]


def _build(cls, **kwargs) -> torch.nn.Module:
    with contextlib.redirect_stdout(io.StringIO()):  # its patch embedding prints its sizes
        try:
            return cls(**kwargs)
        except Exception as error:
            raise ReleaseError(f"{cls.__module__}.{cls.__name__}({kwargs}) failed: {type(error).__name__}: "
                               f"{error}") from None


def release_module(checkout: Path, mask_commit: str = MASK_COMMIT, workdir: Path | None = None) -> ModuleType:
    """The release's model_hacm/transformer.py module, its Transformer completed with `mask_hyper_matrix`."""
    module = _import_package("release_hacm", {"transformer": git_show(checkout, "HEAD", RELEASE_MODEL),
                                              "drop": git_show(checkout, "HEAD", RELEASE_DROP)}, workdir)
    if not hasattr(module.Transformer, MASK_METHOD):
        namespace = vars(module)  # the method's globals are the module's own (torch, F, ...)
        exec(compile(method_source(git_show(checkout, mask_commit, MASK_SOURCE), MASK_METHOD),
                     f"{checkout}/{MASK_SOURCE}@{mask_commit}", "exec"), namespace)
        setattr(module.Transformer, MASK_METHOD, namespace.pop(MASK_METHOD))
    return module


def release_model(checkout: Path, mask_commit: str = MASK_COMMIT, workdir: Path | None = None, *,
                  model_args: dict | None = None) -> torch.nn.Module:
    """The release's pretraining Transformer from `checkout` (RELEASE_MODEL_ARGS unless `model_args`)."""
    module = release_module(checkout, mask_commit, workdir)
    return _build(module.Transformer, **(RELEASE_MODEL_ARGS if model_args is None else model_args))


def evaluation_args(model_args: dict, num_classes: int) -> dict:
    """The evaluation Transformer's arguments for an encoder pretrained with `model_args` (linear probe head)."""
    kept = {key: value for key, value in model_args.items() if key not in _PRETRAIN_ONLY_ARGS}
    return {**kept, "num_classes": num_classes, "protocol": "linprobe"}


def release_eval_model(checkout: Path, *, model_args: dict | None = None, num_classes: int = 60) -> torch.nn.Module:
    """The release's evaluation Transformer (HEAD's model/transformer.py) for an encoder of `model_args`."""
    module = _import_package("release_eval", {"transformer": git_show(checkout, "HEAD", RELEASE_EVAL_MODEL),
                                              "drop": git_show(checkout, "HEAD", RELEASE_DROP)})
    return _build(module.Transformer, **evaluation_args(RELEASE_MODEL_ARGS if model_args is None else model_args,
                                                        num_classes))


def _mamp_package(checkout: Path, package: str) -> ModuleType:
    folder = Path(checkout) / package
    return _import_package(f"mamp_{package}", {name: (folder / f"{name}.py").read_text()
                                               for name in ("transformer", "drop")})


def mamp_model(checkout: Path, kind: str, *, model_args: dict | None = None) -> torch.nn.Module:
    """MAMP's pretraining Transformer of `kind` (mamp: model_mamp, mae: model_mae)."""
    module = _mamp_package(checkout, MAMP_PACKAGES[kind])
    return _build(module.Transformer, **(MAMP_MODEL_ARGS if model_args is None else model_args))


def mamp_eval_model(checkout: Path, *, model_args: dict | None = None, num_classes: int = 60) -> torch.nn.Module:
    """MAMP's evaluation Transformer (model/transformer.py) for an encoder of `model_args`."""
    module = _mamp_package(checkout, MAMP_EVAL_PACKAGE)
    return _build(module.Transformer, **evaluation_args(MAMP_MODEL_ARGS if model_args is None else model_args,
                                                        num_classes))
