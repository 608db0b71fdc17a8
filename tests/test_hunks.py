"""patchmgr.hunks: placing a hunk in a file it was not made for (pure functions, in process)."""

from __future__ import annotations

from patchmgr.hunks import (
    DIRECTIVES,
    REINDENTED,
    already_there,
    anchor,
    compiletest_directives,
    parse_section,
    place,
    split_lines,
)


def hunk(body: str, start: int = 1):
    """One hunk from its lines (' ', '-', '+' prefixed), the header computed."""
    lines = body.splitlines()
    old = sum(1 for line in lines if line[:1] in " -")
    new = sum(1 for line in lines if line[:1] in " +")
    text = f"diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -{start},{old} +{start},{new} @@\n" + body
    return parse_section(text, "f", "f").hunks[0]


def lines(text: str) -> list[str]:
    return split_lines(text)


INSERT = hunk("""\
         tarball.set_product_name("Rust Documentation");
         tarball.add_bulk_dir(&builder.doc_out(host), dest);
         tarball.add_file(&builder.src.join("src/doc/robots.txt"), dest, 0o644);
+        tarball.permit_symlinks(true);
         Some(tarball.generate())
     }
 }
""", 5)


def step(product: str) -> str:
    return (f'        tarball.set_product_name("{product}");\n'
            "        tarball.add_bulk_dir(builder.doc_out(host), dest);\n"
            '        tarball.add_file(builder.src.join("src/doc/robots.txt"), dest, 0o644);\n'
            "        Some(tarball.generate())\n    }\n}\n")


def test_exact_placement_takes_the_nearest_offset_and_reports_no_fuzz():
    text = lines("a\n" * 10 + step("Rust Documentation").replace("builder.", "&builder.") * 2)
    _, placements, missing = place(text, (INSERT,))
    assert missing == [] and placements[0].new_line == 11 and placements[0].fuzz == 0 and placements[0].how == ""


def test_edited_context_is_refused_without_fuzz_and_placed_with_it_where_it_is_unique():
    text = lines("fn a() {}\n" + step("Rust Documentation") + step("JSON Documentation"))
    assert place(text, (INSERT,))[2] == [0]
    assert place(text, (INSERT,), fuzz=1)[2] == [0]  # two context lines differ
    new, placements, missing = place(text, (INSERT,), fuzz=2)
    assert missing == [] and placements[0].fuzz == 2 and placements[0].new_line == 2
    assert new[4] == "        tarball.permit_symlinks(true);\n" and new[5] == "        Some(tarball.generate())\n"
    assert new[2] == "        tarball.add_bulk_dir(builder.doc_out(host), dest);\n"  # the file's context stays
    assert new.count("        tarball.permit_symlinks(true);\n") == 1


def test_fuzz_never_picks_one_of_two_equally_good_places():
    text = lines(step("Rust Documentation") + "fn between() {}\n" + step("Rust Documentation"))
    for fuzz in (2, 3, 6):
        assert place(text, (INSERT,), fuzz=fuzz)[2] == [0]
        assert anchor(text, INSERT, fuzz) is None


def test_fuzz_keeps_the_removed_lines_exact():
    change = hunk("""\
     let a = first_thing_to_compute();
     let b = second_thing_to_compute();
-    let c = the_line_the_patch_changes();
+    let c = the_line_the_patch_changes_now();
     let d = fourth_thing_to_compute();
""")
    edited = lines("    let a = first_thing_to_compute();\n    let b = second_thing_to_compute();\n"
                   "    let c = the_line_upstream_changed();\n    let d = fourth_thing_to_compute();\n")
    assert place(edited, (change,), fuzz=3)[2] == [0]
    moved = lines("fn x() {}\n    let a = first_thing_to_compute(1);\n    let b = second_thing_to_compute();\n"
                  "    let c = the_line_the_patch_changes();\n    let d = fourth_thing_to_compute(1);\n")
    new, placements, missing = place(moved, (change,), fuzz=2)
    assert missing == [] and placements[0].fuzz == 2 and placements[0].new_line == 2
    assert new[3] == "    let c = the_line_the_patch_changes_now();\n" and new[1].endswith("(1);\n")


def test_fuzz_needs_a_telling_line_among_those_that_match():
    trivial = hunk("""\
     }
 \n\
+    call_the_new_function();
     }
     }
""")
    text = lines("fn a() {\n    if x {\n        y();\n    }\n\n    }\n}\n")
    assert anchor(text, trivial, 2) is None


def test_fuzz_refuses_a_place_held_by_common_lines_alone():
    """rustc 1.85's lint docs: the hunk's one telling line (`use std::arch::asm;`) moved down a line
    where it belongs; another doc example matches all but that line, held only by lines every
    example has. Within fuzz 1 that other place is the only one, and still it is refused."""
    docs = hunk("""\
     /// ### Example
     ///
     /// ```rust,compile_fail
+    /// #![cfg_attr(not(target_arch = "powerpc64"), feature(asm_experimental_arch))]
     /// use std::arch::asm;
     ///
     /// fn main() {
""")
    example = "    /// ### Example\n    ///\n    /// ```rust,compile_fail\n{}    ///\n    /// fn main() {{\n    /// }}\n"
    text = lines(example.format("    /// # #![feature(asm_experimental_arch)]\n    /// use std::arch::asm;\n")
                 + example.format("    /// mod lib;\n"))
    assert place(text, (docs,), fuzz=1)[2] == [0]
    assert place(text, (docs,), fuzz=3)[2] == [0]


def test_a_reindented_preimage_is_placed_with_the_files_indentation():
    tabbed = hunk("""\
 \t\t    maybe_backup_path "$_file_install_path"
 \n\
-\t\t    if echo "$_file" | grep "^bin/" > /dev/null
+\t\t    if [ -h "$_src_dir/$_file" ]
+\t\t    then
+\t\t\trun cp -d "$_src_dir/$_file" "$_file_install_path"
+\t\t    elif echo "$_file" | grep "^bin/" > /dev/null
 \t\t    then
 \t\t\trun cp "$_src_dir/$_component/$_file" "$_file_install_path"
""")
    spaced = lines('x\n            maybe_backup_path "$_file_install_path"\n\n'
                   '            if echo "$_file" | grep "^bin/" > /dev/null\n            then\n'
                   '            run cp "$_src_dir/$_component/$_file" "$_file_install_path"\n')
    new, placements, missing = place(spaced, (tabbed,))
    assert missing == [] and placements[0].how == REINDENTED and placements[0].new_line == 2
    assert new[3:7] == ['            if [ -h "$_src_dir/$_file" ]\n', "            then\n",
                        '            run cp -d "$_src_dir/$_file" "$_file_install_path"\n',
                        '            elif echo "$_file" | grep "^bin/" > /dev/null\n']


def test_a_reindented_preimage_is_refused_when_ambiguous_or_the_indentation_does_not_map():
    tabbed = hunk(" \tfirst_call_of_the_block();\n-\tsecond_call_of_the_block();\n+\tsecond_call_changed();\n")
    twice = lines("    first_call_of_the_block();\n    second_call_of_the_block();\n" * 2)
    assert place(twice, (tabbed,))[2] == [0]
    once = lines("    first_call_of_the_block();\n    second_call_of_the_block();\n")
    assert place(once, (tabbed,))[0] == ["    first_call_of_the_block();\n", "    second_call_changed();\n"]
    # the old tab became four spaces on one line and eight on the next: no one indentation to give the new line
    uneven = lines("    first_call_of_the_block();\n        second_call_of_the_block();\n")
    assert place(uneven, (tabbed,))[2] == [0]
    # an added line indented in a way the preimage never shows
    deeper = hunk(" \tfirst_call_of_the_block();\n-\tsecond_call_of_the_block();\n+\t\tsecond_call_changed();\n")
    assert place(lines("    first_call_of_the_block();\n    second_call_of_the_block();\n"), (deeper,))[2] == [0]


AVX = hunk("""\
 // build-pass (FIXME(55996): should be run on targets supporting avx)
-// only-x86_64
+// ignore-test
 // no-prefer-dynamic
 // compile-flags: -Ctarget-feature=+avx -Clto
 \n\
""")


def test_compiletest_directives_are_written_as_upstream_writes_them_only_when_asked():
    rewritten = compiletest_directives(AVX)
    assert rewritten is not None and rewritten.after[1] == "//@ ignore-test\n"
    assert compiletest_directives(hunk(" fn main() {}\n-// a comment line\n+// another\n")) is None
    assert compiletest_directives(hunk(" // check that this works\n-    // only-linux, indented\n+    // x\n")) is None
    assert compiletest_directives(hunk("-//[rev1] compile-flags: -O\n+//[rev1] compile-flags: -g\n")).after == \
        ("//@[rev1] compile-flags: -g\n",)
    new_form = lines(AVX_NEW := "//@ build-pass (FIXME(55996): should be run on targets supporting avx)\n"
                     "//@ only-x86_64\n//@ no-prefer-dynamic\n//@ compile-flags: -Ctarget-feature=+avx -Clto\n\nfn main() {}\n")
    assert place(new_form, (AVX,))[2] == [0]
    new, placements, missing = place(new_form, (AVX,), directives=True)
    assert missing == [] and placements[0].how == DIRECTIVES
    assert "".join(new) == AVX_NEW.replace("//@ only-x86_64", "//@ ignore-test")
    assert already_there(new, AVX, directives=True) and not already_there(new, AVX)
