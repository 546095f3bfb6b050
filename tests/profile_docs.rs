//! The README's profile documentation is rendered from the profile files, never written by
//! hand: the text between `<!-- profiles:begin -->` and `<!-- profiles:end -->` must be what
//! `profiles::describe()` renders from `src/detect/profiles/*.yaml`. After changing a file,
//! `USERHOOK_BLESS=1 cargo test --test profile_docs` rewrites the section.

use std::path::Path;

use userhook::detect::profiles;

const BEGIN: &str = "<!-- profiles:begin -->";
const END: &str = "<!-- profiles:end -->";
const BLESS: &str = "USERHOOK_BLESS=1 cargo test --test profile_docs";

/// The section between the markers, as the profile files render it.
fn rendered() -> String {
    let tables = match profiles::describe() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    };
    format!(
        "\n<!-- Generated from src/detect/profiles/*.yaml: edit those files, then run \
         `{BLESS}`. -->\n\n{tables}\n"
    )
}

#[test]
fn readme_profile_section_is_rendered_from_the_profile_files() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let (Some(begin), Some(end)) = (readme.find(BEGIN), readme.find(END)) else {
        panic!("README.md has no `{BEGIN}` ... `{END}` section for the profile tables");
    };
    let start = begin + BEGIN.len();
    assert!(start <= end, "README.md: `{END}` comes before `{BEGIN}`");
    let want = rendered();
    let have = &readme[start..end];
    if have == want {
        return;
    }
    if std::env::var("USERHOOK_BLESS").is_ok_and(|v| v == "1") {
        let updated = format!("{}{want}{}", &readme[..start], &readme[end..]);
        std::fs::write(&path, updated).expect("README.md is writable");
        eprintln!("README.md: profile section rewritten from src/detect/profiles/*.yaml");
        return;
    }
    let line = have
        .lines()
        .zip(want.lines())
        .position(|(h, w)| h != w)
        .unwrap_or_else(|| have.lines().count().min(want.lines().count()));
    panic!(
        "README.md's profile section (between `{BEGIN}` and `{END}`) is not what \
         src/detect/profiles/*.yaml render; run `{BLESS}` to rewrite it, and review the diff.\n\
         first difference at line {} of the section:\n  README:   {:?}\n  rendered: {:?}",
        line + 1,
        have.lines().nth(line).unwrap_or("(end)"),
        want.lines().nth(line).unwrap_or("(end)"),
    );
}
