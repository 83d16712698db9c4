"""The synthetic classes: their names, the motion pieces (or hand circles) each is made of, the two-person ones."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "raise hands: right, left, both",
    "raise hands: left, both, right",
    "raise hands: both, right, left",
    "circle right hand clockwise",
    "circle right hand anticlockwise",
    "circle right hand clockwise, then back",
    "kick right, kick left, bow",
    "kick left, bow, kick right",
    "bow, kick right, kick left",
    "two people: step closer, shake hands, hug",
    "two people: shake hands, hug, step closer",
    "two people: hug, step closer, shake hands",
    "raise right hand, kick left, bow",
    "kick left, bow, raise right hand",
    "bow, raise right hand, kick left",
)
NUM_CLASSES = len(CLASS_NAMES)  # the label space of the NTU-120 stores
NTU60_NUM_CLASSES = 12  # the classes performed in the NTU-60 setups; PKU-MMD uses these too

# Each class is a sequence of motion pieces (ordered classes) or hand circles with a sense of rotation.
ORDERED_PIECES: dict[int, tuple[str, ...]] = {
    0: ("raise_right", "raise_left", "raise_both"),
    1: ("raise_left", "raise_both", "raise_right"),
    2: ("raise_both", "raise_right", "raise_left"),
    6: ("kick_right", "kick_left", "bow"),
    7: ("kick_left", "bow", "kick_right"),
    8: ("bow", "kick_right", "kick_left"),
    9: ("step_closer", "shake_hands", "hug"),
    10: ("shake_hands", "hug", "step_closer"),
    11: ("hug", "step_closer", "shake_hands"),
    12: ("raise_right", "kick_left", "bow"),
    13: ("kick_left", "bow", "raise_right"),
    14: ("bow", "raise_right", "kick_left"),
}
CIRCLE_SENSES: dict[int, str] = {3: "clockwise", 4: "anticlockwise", 5: "there and back"}
TWO_PERSON_CLASSES: frozenset[int] = frozenset({9, 10, 11})
