"""The NTU reader, denoising and normalisation on the real recorded samples and on crafted files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from hacm.data.denoise import MAX_NOISE_LENGTH, select_actors
from hacm.data.ntu import load_sample, parse_ntu_name, parse_skeleton_text, read_skeleton
from hacm.data.raw import SkeletonFormatError


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The reference pickle holds dicts, lists and numpy arrays; refuse anything else."""

    def find_class(self, module: str, name: str):
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name in ("_reconstruct", "scalar"):
            return getattr(np._core.multiarray if hasattr(np, "_core") else np.core.multiarray, name)
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def test_every_real_sample_reads_to_finite_two_actor_arrays(ntu_samples):
    assert len(ntu_samples) == 12
    for path in ntu_samples:
        raw = read_skeleton(path)
        sample = load_sample(path)
        assert sample.dtype == np.float32
        assert sample.shape == (raw.num_valid_frames, 2, 25, 3)
        assert np.isfinite(sample).all()
        two_person = parse_ntu_name(path.name).action >= 50
        assert bool(sample[:, 1].any()) == two_person, path.name
        # Normalised: actor 1's spine middle is the origin in its first frame.
        np.testing.assert_array_equal(sample[0, 0, 1], 0.0)


def test_body_ids_are_exact_strings(ntu_samples):
    raw = read_skeleton(ntu_samples[0].parent / "S017C003P020R002A054.skeleton")
    assert list(raw.bodies) == ["72057594037937917", "72057594037937959"]
    # These ids differ in the last two digits only; as float32 they are the same number.
    assert np.float32(72057594037937917) == np.float32(72057594037937959)


def test_crlf_and_lf_copies_read_identically(shared_data):
    crlf = shared_data / "ntu_raw_samples" / "S001C001P001R001A001.skeleton"
    lf = shared_data / "ntu_raw_samples" / "line_ending_variants" / "lf" / "S001C001P001R001A001.skeleton"
    assert b"\r\n" in crlf.read_bytes() and b"\r\n" not in lf.read_bytes()
    np.testing.assert_array_equal(load_sample(crlf), load_sample(lf))


def test_reader_reproduces_the_reference_stage_one_output(shared_data):
    folder = shared_data / "ntu_raw_samples" / "derived" / "sgn_get_raw_skes_data"
    with open(folder / "raw_skes_data.pkl", "rb") as handle:
        reference = _NumpyOnlyUnpickler(handle).load()
    frame_counts = [int(n) for n in (folder / "frames_cnt.txt").read_text().split()]
    assert [r["num_frames"] for r in reference] == frame_counts
    for expected in reference:
        raw = read_skeleton(shared_data / "ntu_raw_samples" / f"{expected['name']}.skeleton")
        assert raw.num_valid_frames == expected["num_frames"]
        assert list(raw.bodies) == list(expected["data"])
        for body_id, body in expected["data"].items():
            ours = raw.bodies[body_id]
            np.testing.assert_array_equal(ours.joints.reshape(-1, 3), body["joints"])
            np.testing.assert_array_equal(ours.frames, body["interval"])
            if "motion" in body:
                motion = np.var(ours.joints.reshape(-1, 3), axis=0).sum()
                np.testing.assert_allclose(motion, body["motion"], rtol=1e-5)


def test_official_txt2npy_coordinates_match(shared_data):
    reference = np.load(
        shared_data / "ntu_raw_samples" / "derived" / "txt2npy" / "S001C001P001R001A001.skeleton.npy",
        allow_pickle=True,
    ).item()
    raw = read_skeleton(shared_data / "ntu_raw_samples" / "S001C001P001R001A001.skeleton")
    (body,) = raw.bodies.values()
    np.testing.assert_allclose(body.joints, reference["skel_body0"], atol=1e-6)


# --- crafted files -------------------------------------------------------------------------------


def _joint_lines(xyz: np.ndarray) -> list[str]:
    return [f"{x:.7g} {y:.7g} {z:.7g} 1 2 3 4 0.1 0.2 0.3 0.4 2" for x, y, z in xyz]


def skeleton_text(frames: list[list[tuple[str, np.ndarray]]], newline: str = "\n") -> str:
    """Write NTU text: per frame a list of (body id, (25, 3) xyz)."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.1 -0.2 2")
            lines.append("25")
            lines.extend(_joint_lines(xyz))
    return newline.join(lines) + newline


def _person(rng: np.random.Generator, shift: float = 0.0) -> np.ndarray:
    body = rng.normal(0, 0.05, (25, 3)).astype(np.float32)
    body[:, 1] += np.linspace(-0.8, 0.8, 25)  # taller than wide: not flat
    body[:, 0] += shift
    return body


def test_empty_frames_exponents_and_more_than_two_bodies():
    rng = np.random.default_rng(0)
    people = {"72057594037927001": 0.0, "72057594037927002": 1.0, "72057594037927003": -1.0}
    frames = [[]]  # an empty first frame
    for t in range(20):
        frames.append([(body_id, _person(rng, shift) * (1 + 0.05 * t)) for body_id, shift in people.items()])
    frames.append([])
    text = skeleton_text(frames).replace("0.1 -0.2 2\n", "1E-01 -2e-1 2\n")
    raw = parse_skeleton_text(text.encode(), name="S001C001P001R001A050")
    assert raw.num_frames == 22 and raw.num_valid_frames == 20
    assert list(raw.bodies) == list(people)
    for body in raw.bodies.values():
        np.testing.assert_array_equal(body.frames, np.arange(20))
    sequence = select_actors(raw)
    assert sequence.shape == (20, 2, 25, 3)
    assert sequence[:, 0].any() and sequence[:, 1].any()


def test_short_lived_extra_body_is_dropped_and_actors_chain():
    rng = np.random.default_rng(1)
    frames = []
    for t in range(40):
        bodies = [("1", _person(rng) * (1 + 0.1 * np.sin(t)))]
        if t < MAX_NOISE_LENGTH:  # a flicker: noise by length
            bodies.append(("2", _person(rng, 2.0)))
        if t >= 20:  # a second person entering half-way: overlaps body 1, so it becomes the other actor
            bodies.append(("3", _person(rng, -1.0) * (1 + 0.3 * np.sin(t))))
        frames.append(bodies)
    raw = parse_skeleton_text(skeleton_text(frames).encode(), name="S001C001P001R001A050")
    sequence = select_actors(raw)
    assert sequence.shape[0] == 40
    kept = {tuple(np.round(sequence[25, a, 0], 4)) for a in range(2)}
    assert tuple(np.round(raw.bodies["3"].joints[5, 0], 4)) in kept
    assert not any(np.allclose(sequence[t, a], raw.bodies["2"].joints[t], atol=1e-6)
                   for t in range(MAX_NOISE_LENGTH) for a in range(2))


def test_flat_body_is_dropped_by_spread():
    rng = np.random.default_rng(2)
    flat = np.zeros((25, 3), np.float32)
    flat[:, 0] = np.linspace(-1, 1, 25)  # wide and flat: a table edge
    frames = [[("1", _person(rng)), ("9", flat + rng.normal(0, 0.01, (25, 3)))] for _ in range(30)]
    sequence = select_actors(parse_skeleton_text(skeleton_text(frames).encode(), name="x"))
    assert sequence[:, 0].any() and not sequence[:, 1].any()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("3\n1\n7 0 1 1 1 1 0 0 0 2\n25\n" + "0 0 0 0 0 0 0 0 0 0 0 2\n" * 25, "truncated"),
        ("1\n1\n7 0 1 1 1 1 0 0 0 2\n24\n" + "0 0 0 0 0 0 0 0 0 0 0 2\n" * 24, "24 joints"),
        ("1\n1\n7 0 1 1 1 1 0 0 0 2\n25\n" + "0 abc 0 0 0 0 0 0 0 0 0 2\n" * 25, "non-numeric"),
        ("1\n1\n7 0 1 1 1 1 0 0 0 2\n25\n" + "0 nan 0 0 0 0 0 0 0 0 0 2\n" * 25, "NaN"),
        # Finite in float64, infinite in the float32 store: rejected, not stored as inf.
        ("1\n1\n7 0 1 1 1 1 0 0 0 2\n25\n" + "0 1e39 0 0 0 0 0 0 0 0 0 2\n" * 25, "beyond float32"),
        ("2\n0\n0\n", "no body"),
        ("x\n", "non-numeric"),
    ],
)
def test_bad_files_raise_a_clear_error(text, reason):
    with pytest.raises(SkeletonFormatError, match=reason):
        select_actors(parse_skeleton_text(text.encode(), name="bad"))


def test_unreadable_file_is_a_format_error(tmp_path: Path):
    with pytest.raises(SkeletonFormatError, match="unreadable"):
        read_skeleton(tmp_path / "S001C001P001R001A001.skeleton")


def _same(a, b) -> None:
    assert (a.num_frames, a.num_valid_frames, list(a.bodies)) == (b.num_frames, b.num_valid_frames, list(b.bodies))
    for body_id in a.bodies:
        np.testing.assert_array_equal(a.bodies[body_id].joints, b.bodies[body_id].joints)
        np.testing.assert_array_equal(a.bodies[body_id].frames, b.bodies[body_id].frames)


def test_fast_line_parser_equals_the_strict_token_parser(ntu_samples):
    from hacm.data.ntu import _parse_fast, _parse_strict

    for path in ntu_samples:
        data = path.read_bytes()
        fast = _parse_fast(data, path.stem)
        assert fast is not None, f"{path.name} should take the fast path"
        _same(fast, _parse_strict(data, path.stem))


def test_irregular_whitespace_is_read_like_regular_text():
    from hacm.data.ntu import _parse_fast

    rng = np.random.default_rng(3)
    frames = [[("72057594037927001", _person(rng))] for _ in range(15)] + [[]]
    regular = skeleton_text(frames).encode()
    irregular = regular.replace(b" ", b"  \t").replace(b"\n", b" \r\n\n")
    assert _parse_fast(irregular, "x") is None  # not one record per line: the strict parser decides
    _same(parse_skeleton_text(irregular, name="x"), parse_skeleton_text(regular, name="x"))


def test_a_batch_of_files_parses_as_each_file_alone(ntu_samples):
    """parse_skeleton_texts (one C-parser call for many files, as hacm.prepare reads them) gives each
    file what parse_skeleton_text gives it alone, bad files and layouts the shared table cannot hold
    included (they are parsed alone)."""
    from hacm.data.ntu import parse_skeleton_texts

    rng = np.random.default_rng(4)
    regular = skeleton_text([[("72057594037927001", _person(rng))] for _ in range(12)] + [[]]).encode()
    texts = [(path.read_bytes(), path.stem) for path in ntu_samples]  # CRLF and LF, one and two bodies
    texts += [(regular, "regular"), (regular.rstrip(b"\n"), "no final newline"), (b"2\n0\n0\n", "no body"),
              (b"", "empty"), (b"x\n", "junk"), (regular.replace(b"\n", b"\r\n", 3), "mixed line endings")]
    quoted = [(regular, "regular"), (b'1\n"\n', "a quote that joins lines"), (regular, "regular again")]
    irregular = [(regular, "regular"), (regular.replace(b" ", b"  "), "double spaces")]
    for batch in (texts, quoted, irregular):
        for (data, name), parsed in zip(batch, parse_skeleton_texts(batch)):
            try:
                alone = parse_skeleton_text(data, name=name)
            except SkeletonFormatError as error:
                assert isinstance(parsed, SkeletonFormatError) and str(parsed) == str(error), name
            else:
                _same(parsed, alone)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("separator", [b" ", b"\t"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_utf8_bom_tabs_and_crlf_read_alone_or_together(bom, separator, newline):
    """Reliability probe 2, case 3: a file with both a BOM and tab separators was refused ("non-numeric text
    b'\\xef\\xbb\\xbf68'"), though each alone was read. Alone and in a batch (as hacm.prepare reads)."""
    from hacm.data.ntu import parse_skeleton_texts

    rng = np.random.default_rng(6)
    plain = skeleton_text([[("72057594037927001", _person(rng))] for _ in range(10)]).encode()
    variant = bom + plain.replace(b" ", separator).replace(b"\n", newline)
    _same(parse_skeleton_text(variant, name="x"), parse_skeleton_text(plain, name="x"))
    for parsed in parse_skeleton_texts([(plain, "x"), (variant, "x"), (plain, "x")]):
        _same(parsed, parse_skeleton_text(plain, name="x"))
