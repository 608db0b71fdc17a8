"""The persisted files: each declared once in patchmgr/state.py, versioned, read back exactly;
a version-1 file (untyped `extra`) is read, a newer or corrupt one refused with one line."""

from __future__ import annotations

import json

import pytest

from patchmgr import state
from patchmgr.errors import WrongState


def origin(path="."):
    return state.RepoOrigin(path, "refs/heads/main", "a" * 40)


JOURNALS = [
    state.ApplyJournal(set="s", patch_branch="patchmgr/s", repos=[origin(), origin("src/llvm-project")],
                       bases={".": "b" * 40}, applied_origins=[origin()], skipped=["s/rust/0001.patch"],
                       paths={".": ["x.rs"]}, enzyme_created=True,
                       applied_before=state.AppliedRecord(set="s", patch_branch="patchmgr/s", repos=[origin()])),
    state.RebaseJournal(set="t", patch_branch="patchmgr/rebase/t", repos=[origin()], from_set="s", onto_arg="1.64.0",
                        old_bases={".": "b" * 40}, ontos={".": "c" * 40}, new=state.NewBase("1.64.0", "d" * 40, 15),
                        dirs={".": "t/rust"}, outcomes={"s/rust/0001.patch": ["clean", ""]},
                        writes=state.StoreWrites(manifest=state.ManifestEdit("t", "", '[sets."t"]\nllvm = 15\n'),
                                                 files={"t/rust/0001.patch": "0" * 64}, dirs=["t", "t/rust"]),
                        final=state.ApplyJournal(set="t", patch_branch="patchmgr/t", repos=[origin()],
                                                 bases={".": "c" * 40}, applied_origins=[origin()])),
    state.UnapplyJournal(set="s", patch_branch="patchmgr/s", repos=[origin()], bases={".": "b" * 40}),
]


@pytest.mark.parametrize("journal", JOURNALS, ids=lambda j: j.kind)
def test_journal_round_trip(tmp_path, journal):
    state.save_op(tmp_path, journal)
    data = json.loads((tmp_path / "patchmgr" / "op.json").read_text())
    assert data["version"] == state.VERSION and data["kind"] == journal.kind
    assert state.load_op(tmp_path) == journal


def test_applied_record_round_trip(tmp_path):
    record = state.AppliedRecord(set="s", patch_branch="patchmgr/s", repos=[origin()],
                                 patch_ids={".": {"s/rust/0001.patch": "e" * 40}},
                                 verified={".": {"s/rust/0001.patch": state.Verified("f" * 40, "0" * 64, "1" * 64)}},
                                 config=state.ConfigWritten("/t/config.toml", "1" * 64, False),
                                 config_inputs=state.ConfigInputs("k", None))
    state.save_applied(tmp_path, record)
    assert state.load_applied(tmp_path) == record
    state.remove(tmp_path, state.APPLIED_FILE)
    assert state.load_applied(tmp_path) is None and not (tmp_path / "patchmgr").exists()


def test_version_1_files_are_read(tmp_path):
    """What patchmgr 0.1 wrote: everything beyond the first fields in `extra`."""
    (tmp_path / "patchmgr").mkdir()
    (tmp_path / "patchmgr" / "applied.json").write_text(json.dumps({
        "set": "s", "patch_branch": "patchmgr/s", "kind": "apply", "enzyme_created": False,
        "enzyme_module_created": False, "repos": [origin().__dict__],
        "extra": {"patch_ids": {".": {"l": "e" * 40}}, "verified": {}, "config": {
            "path": "/t/config.toml", "sha256": "1" * 64, "had_backup": True},
            "config_inputs": {"key": "k", "result": "r"}}}))
    record = state.load_applied(tmp_path)
    assert record is not None and record.patch_ids == {".": {"l": "e" * 40}}
    assert record.config == state.ConfigWritten("/t/config.toml", "1" * 64, True)
    (tmp_path / "patchmgr" / "op.json").write_text(json.dumps({
        "set": "t", "patch_branch": "patchmgr/rebase/t", "kind": "rebase", "enzyme_created": False,
        "enzyme_module_created": False, "repos": [origin().__dict__],
        "extra": {"from": "s", "onto_arg": "1.64.0", "old_bases": {}, "ontos": {".": "c" * 40},
                  "new": {"rustc": "1.64.0", "commit": "d" * 40, "llvm": 15, "note": ""}, "dirs": {},
                  "outcomes": {}, "written": False, "stopped": "x"}}))
    journal = state.load_op(tmp_path)
    assert isinstance(journal, state.RebaseJournal)
    assert journal.from_set == "s" and journal.stopped == "x" and journal.new.llvm == 15


def test_version_3_verified_lists_are_read_as_objects(tmp_path):
    """Before version 4, applied.json's `verified` entries were positional lists, of two
    items in the oldest records (no digest of the whole file) and three later."""
    (tmp_path / "patchmgr").mkdir()
    (tmp_path / "patchmgr" / "applied.json").write_text(json.dumps({
        "version": 3, "set": "s", "patch_branch": "patchmgr/s", "repos": [origin().__dict__],
        "verified": {".": {"a": ["f" * 40, "0" * 64, "1" * 64], "b": ["e" * 40, "2" * 64]}}}))
    record = state.load_applied(tmp_path)
    assert record is not None
    assert record.verified == {".": {"a": state.Verified("f" * 40, "0" * 64, "1" * 64),
                                     "b": state.Verified("e" * 40, "2" * 64, "")}}
    state.save_applied(tmp_path, record)
    written = json.loads((tmp_path / "patchmgr" / "applied.json").read_text())
    assert written["version"] == 4 and written["verified"]["."]["b"] == {"commit": "e" * 40, "diff": "2" * 64, "file": ""}


def test_verify_cache_round_trip_and_its_unversioned_form(tmp_path):
    """verify.json is declared here like the other files; the bare map written before
    version 4 (no version, not written through a rename) still reads."""
    (tmp_path / "patchmgr").mkdir()
    old = {"k" * 64: {"configuration": "Enzyme off", "ok": False, "error": "error[E0425] (a.rs:1)", "blamed": "s/0001"}}
    (tmp_path / "patchmgr" / "verify.json").write_text(json.dumps(old))
    cache = state.load_verify_cache(tmp_path)
    assert cache.verdicts == {"k" * 64: state.Verdict("Enzyme off", False, "error[E0425] (a.rs:1)", "s/0001")}
    cache.verdicts["m" * 64] = state.Verdict("--cfg llvm_enzyme", True)
    state.save_verify_cache(tmp_path, cache)
    assert json.loads((tmp_path / "patchmgr" / "verify.json").read_text())["version"] == state.VERSION
    assert state.load_verify_cache(tmp_path) == cache


def test_a_rebase_journal_holding_the_whole_manifest_is_refused(tmp_path):
    """An older patchmgr's rebase journal kept the manifest's whole text, which its --abort wrote
    back over every edit made since; this one does not take such a journal over."""
    (tmp_path / "patchmgr").mkdir()
    (tmp_path / "patchmgr" / "op.json").write_text(json.dumps({
        "version": 2, "kind": "rebase", "set": "t", "patch_branch": "patchmgr/rebase/t", "repos": [origin().__dict__],
        "from_set": "s", "onto_arg": "1.64.0", "old_bases": {}, "ontos": {}, "dirs": {},
        "new": {"rustc": "1.64.0", "commit": "d" * 40, "llvm": 15, "note": ""}, "manifest": "schema = 1\n"}))
    with pytest.raises(WrongState, match="records a rebase started by an older patchmgr; use that version"):
        state.load_op(tmp_path)


@pytest.mark.parametrize("content,message", [
    ('{"version": 5, "kind": "apply"}', r"written by a newer patchmgr \(format 5, this one reads up to 4\)"),
    ("{not json", r"op\.json is corrupt"),
    ("[1, 2]", r"op\.json is corrupt \(not a JSON object\)"),
    ('{"version": 2, "kind": "merge", "set": "s"}', r"records an unknown operation 'merge'"),
    ('{"version": 2, "kind": "apply", "set": 1, "patch_branch": "p", "repos": [], "bases": {}, "applied_origins": []}',
     r"op\.json is corrupt \(expected str, got 1\)"),
    ('{"version": 2, "kind": "apply", "set": "s", "patch_branch": "p", "repos": [], "bases": {}, '
     '"applied_origins": [], "surprise": 1}', r"unknown key 'surprise' in ApplyJournal"),
    ('{"version": 2, "kind": "apply", "set": "s"}', r"op\.json is corrupt"),
])
def test_newer_or_corrupt_files_are_refused_in_one_line(tmp_path, content, message):
    (tmp_path / "patchmgr").mkdir()
    (tmp_path / "patchmgr" / "op.json").write_text(content)
    with pytest.raises(WrongState, match=message) as info:
        state.load_op(tmp_path)
    assert "\n" not in str(info.value)
