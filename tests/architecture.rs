//! Guards the shape of `src/`: (1) a top-level module names only modules ranked below it in
//! [`LAYERS`] (not a same-rank sibling, not anything above), and every module is ranked;
//! (2) no files import each other in a ring, counting `use` trees and inline `crate::`,
//! `super::`, `self::` and child-module paths as file → file edges.
//!
//! Reading a failure: `table:` lines mean [`LAYERS`] and `src/` disagree: add or drop the
//! module. `layer:` lines give the importing file, its rank, the paths it wrote (made
//! `crate::` paths, with their first line) and the rank they reach: move the item down, or
//! invert the dependency. `cycle:` blocks list a ring's files and every edge inside it with the
//! names taken: move what both sides share into a file neither imports back.
//!
//! Not counted: `mod x;` declarations, comments, string and char literals, test files
//! (`tests.rs`, `tests/`), and a file's tail from its first `#[cfg(test)]` on. `lib.rs` is
//! exempt from layering (it only declares modules); `main.rs` and `bin/` are other crates.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;

/// Rank of each top-level module, bottom (index 0) to top. Edit this when a module moves: a
/// module may use only modules on the lines above its own.
const LAYERS: &[&[&str]] = &[
    /* 0 */ &["ids"],
    /* 1 */ &["shutdown", "event", "exchange", "redact"],
    /* 2 */ &["metrics", "capture", "headers"],
    /* 3 */ &["config", "template"],
    /* 4 */ &["telemetry", "extract"],
    /* 5 */ &["detect"],
    /* 6 */ &["upstream", "webhook", "sink", "learn"],
    /* 7 */ &["snapshot"],
    /* 8 */ &["reload"],
    /* 9 */ &["events"],
    /* 10 */ &["proxy"],
    /* 11 */ &["admin", "tail"],
    /* 12 */ &["app"],
    /* 13 */ &["demo"],
    /* 14 */ &["cli"],
];

/// What the analysis found, kept apart from the assertions so self-tests can inspect it.
#[derive(Debug, Default)]
struct Report {
    /// Files read (test files and other crates' roots left out).
    files: usize,
    /// File → file edges (as `src/…`), each with the names it takes.
    edges: BTreeMap<(String, String), BTreeSet<String>>,
    /// One readable entry per broken rule; empty means the tree passes.
    problems: Vec<String>,
}

/// A path a file names: the line of its last segment, the path (absolute from the crate root
/// once resolved), and whether it is a glob `use …::*`.
type Named = (usize, Vec<String>, bool);

/// A lexed token (identifier, `::` or one punctuation char) and its line.
type Token = (String, usize);

/// The whole analysis as a pure function of `(path relative to src/, text)` pairs.
fn analyse(files: &[(String, String)], layers: &[&[&str]]) -> Report {
    let files = Vec::from_iter(
        files
            .iter()
            .filter_map(|(p, t)| Some((p, module_of(p)?, t))),
    );
    let modules = HashMap::from_iter(files.iter().enumerate().map(|(i, f)| (&f.1[..], i)));
    let name = |i: usize| format!("src/{}", files[i].0);
    let top = |i: usize| files[i].1.first().map_or("", String::as_str);
    let (rank, mut problems) = check_table((0..files.len()).map(top).collect(), layers);
    let mut edges: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut graph = vec![BTreeSet::new(); files.len()];
    let mut back: BTreeMap<(usize, &str), BTreeMap<String, usize>> = BTreeMap::new();
    for (from, (_, module, text)) in files.iter().enumerate() {
        for (line, abs, glob) in names(&tokens(text), module) {
            let Some((to, taken)) = resolve(&abs, glob, &modules).filter(|r| r.0 != from) else {
                continue;
            };
            let key = (name(from), name(to));
            edges.entry(key).or_default().insert(taken);
            graph[from].insert(to);
            let (a, b) = (top(from), top(to));
            if a != b && matches!((rank.get(a), rank.get(b)), (Some(ra), Some(rb)) if rb >= ra) {
                let written = format!("crate::{}{}", abs.join("::"), if glob { "::*" } else { "" });
                let hits = back.entry((from, b)).or_default();
                hits.entry(written).or_insert(line);
            }
        }
    }
    for ((from, b), paths) in back {
        let (a, file) = (top(from), name(from));
        let (ra, rb) = (rank[a], rank[b]);
        let how = if ra == rb { "a sibling" } else { "above it" };
        let paths = Vec::from_iter(paths.iter().map(|(p, l)| format!("{p} (line {l})")));
        let what = format!("{file} ({a}, layer {ra}) uses {b} (layer {rb}, {how})");
        problems.push(format!("layer: {what}: {}", paths.join(", ")));
    }
    for ring in cycles(&graph) {
        let mut ring = Vec::from_iter(ring.into_iter().map(name));
        ring.sort();
        let (n, files) = (ring.len(), ring.join(", "));
        let mut text = format!("cycle: {n} files import each other: {files}");
        for ((a, b), taken) in &edges {
            if ring.contains(a) && ring.contains(b) {
                text += &format!("\n    {a} → {b}: {}", join(taken));
            }
        }
        problems.push(text);
    }
    let files = files.len();
    Report {
        files,
        edges,
        problems,
    }
}

/// The file a path lands in (its longest prefix that is a module) and the name it takes
/// there: what follows the module part, else the module itself, or `*` for a glob.
fn resolve(
    abs: &[String],
    glob: bool,
    modules: &HashMap<&[String], usize>,
) -> Option<(usize, String)> {
    let known = |&n: &usize| modules.contains_key(&abs[..n]);
    let n = (0..=abs.len()).rev().find(known)?;
    let tail = abs[n..].join("::");
    let taken = match (glob, tail.is_empty()) {
        (true, true) => "*".to_string(),
        (true, false) => tail + "::*",
        (false, true) => abs.last().map_or("crate".to_string(), String::clone),
        (false, false) => tail,
    };
    Some((modules[&abs[..n]], taken))
}

/// The module path of a file (`a/b.rs` and `a/b/mod.rs` are `a::b`, `lib.rs` the root), or
/// `None` for test code and other crates' roots.
fn module_of(path: &str) -> Option<Vec<String>> {
    let parts: Vec<&str> = path.strip_suffix(".rs")?.split('/').collect();
    if parts.contains(&"tests") || parts[0] == "bin" || parts == ["main"] {
        return None;
    }
    let keep = parts.len() - usize::from(parts == ["lib"] || parts.last() == Some(&"mod"));
    Some(parts[..keep].iter().map(|p| p.to_string()).collect())
}

/// Checks the table against the top-level modules present, so a new or renamed module cannot
/// slip past the layer check unranked; returns each module's rank and the table problems.
fn check_table(
    mut present: BTreeSet<&str>,
    layers: &[&[&str]],
) -> (HashMap<String, usize>, Vec<String>) {
    present.remove(""); // the crate root (`lib.rs`) is not a module to rank
    let (mut rank, mut out) = (HashMap::new(), Vec::new());
    for (r, &row) in layers.iter().enumerate() {
        for &m in row {
            if rank.insert(m.to_string(), r).is_some() {
                out.push(format!("table: `{m}` is in LAYERS twice: keep one"));
            }
            if !present.contains(m) {
                let fix = "drop the stale entry";
                out.push(format!(
                    "table: LAYERS ranks `{m}` (layer {r}) but src/ has no {m}.rs or {m}/: {fix}"
                ));
            }
        }
    }
    for m in present.iter().filter(|m| !rank.contains_key(**m)) {
        let fix = "but LAYERS does not rank it: add it to LAYERS";
        out.push(format!("table: src/ has the module `{m}` {fix}"));
    }
    (rank, out)
}

/// Lexes code into identifiers, `::` and single punctuation chars, each with its line.
/// Comments, strings (normal and raw) and char literals are dropped, and so is everything
/// from the first `#[cfg(test)]` on. A `'` opens a char literal only if it closes as one
/// (`'x'`, `'\n'`), so lifetimes pass through.
fn tokens(text: &str) -> Vec<Token> {
    let s: Vec<char> = text.chars().collect();
    let at = |k: usize| s.get(k).copied().unwrap_or('\0');
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < s.len() {
        let start = i;
        i = match (s[i], at(i + 1)) {
            ('/', '/') => find(&s, i, |c| c == '\n'),
            ('/', '*') => block_end(&s, i),
            ('"', _) => string_end(&s, i + 1),
            ('r' | 'b', _) if raw_end(&s, i) > i => raw_end(&s, i),
            ('\'', '\\') => (find(&s, i + 3, |c| c == '\'') + 1).min(s.len()),
            ('\'', _) if at(i + 2) == '\'' => i + 3,
            (c, next) => {
                let end = match c {
                    _ if is_ident(c) => find(&s, i, |c| !is_ident(c)),
                    ':' if next == ':' => i + 2,
                    _ => i + 1,
                };
                if !c.is_whitespace() {
                    out.push((s[i..end].iter().collect(), line));
                }
                end
            }
        };
        line += s[start..i].iter().filter(|&&c| c == '\n').count();
    }
    let cfg_test = |w: &[Token]| w.iter().map(|t| t.0.as_str()).eq(CFG_TEST);
    if let Some(cut) = out.windows(CFG_TEST.len()).position(cfg_test) {
        out.truncate(cut);
    }
    out
}

/// The tokens of `#[cfg(test)]`, where a file's test tail starts.
const CFG_TEST: [&str; 7] = ["#", "[", "cfg", "(", "test", ")", "]"];

/// The end of a block comment starting at `i`; Rust's block comments nest, so these do too.
fn block_end(s: &[char], mut i: usize) -> usize {
    let mut depth = 0;
    while i + 1 < s.len() {
        let open = s[i] == '/' && s[i + 1] == '*';
        let close = s[i] == '*' && s[i + 1] == '/';
        depth = depth + usize::from(open) - usize::from(close);
        i += if open || close { 2 } else { 1 };
        if depth == 0 {
            return i;
        }
    }
    s.len()
}

/// The end of a normal string whose body starts at `i`; escapes are skipped so `\"` does
/// not end it.
fn string_end(s: &[char], mut i: usize) -> usize {
    while i < s.len() && s[i] != '"' {
        i += if s[i] == '\\' { 2 } else { 1 };
    }
    (i + 1).min(s.len())
}

/// The end of a raw string (`r"…"`, `r#"…"#`, `br"…"`) starting at `i`, or `i` when none
/// does (a raw identifier `r#x`, or a plain word). The lexer only calls this at a word start.
fn raw_end(s: &[char], i: usize) -> usize {
    let r = i + usize::from(s[i] == 'b');
    if s.get(r) != Some(&'r') {
        return i;
    }
    let hashes = s[r + 1..].iter().take_while(|&&c| c == '#').count();
    let body = r + 1 + hashes;
    if s.get(body) != Some(&'"') {
        return i;
    }
    let closes = |k: usize| s[k] == '"' && (1..=hashes).all(|h| s.get(k + h) == Some(&'#'));
    let close = (body + 1..s.len()).find(|&k| closes(k));
    close.map_or(s.len(), |k| k + 1 + hashes)
}

/// The first index at or after `from` whose char satisfies `f`, or the end: every scan the
/// lexer does stops safely at the end of the text.
fn find(s: &[char], from: usize, f: impl Fn(char) -> bool) -> usize {
    (from..s.len()).find(|&k| f(s[k])).unwrap_or(s.len())
}

/// Is `c` part of an identifier? Keeps words whole, so `xr"` is never read as a raw string.
fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Can this token be a path segment? Numbers and punctuation never start a path.
fn is_word(t: &str) -> bool {
    t.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

/// The text of token `i`, or `""` out of range (`i` may have wrapped below 0), so look-ahead
/// and look-behind need no bounds checks.
fn tok(t: &[Token], i: usize) -> &str {
    t.get(i).map_or("", |t| t.0.as_str())
}

/// Every path a file names, made absolute. Paths start at `crate`, `self`, `super` or a
/// child module the file declares (`mod x;`); others (std, other crates, locals) are skipped.
/// Inline `mod x { … }` blocks are tracked so `super::` inside them resolves correctly, and
/// `pub(in crate::x)` is skipped: a visibility is not an import.
fn names(t: &[Token], module: &[String]) -> Vec<Named> {
    let declares = |k: usize| (tok(t, k) == "mod" && tok(t, k + 2) == ";").then(|| tok(t, k + 1));
    let children: BTreeSet<&str> = (0..t.len()).filter_map(declares).collect();
    let (mut scope, mut inline) = (module.to_vec(), Vec::new());
    let (mut out, mut depth, mut i) = (Vec::new(), 0usize, 0);
    while i < t.len() {
        match tok(t, i) {
            "{" => depth += 1,
            "}" => {
                if inline.pop_if(|d| *d == depth).is_some() {
                    scope.pop();
                }
                depth = depth.saturating_sub(1);
            }
            w if w == "use"
                || is_word(w) && tok(t, i + 1) == "::" && tok(t, i.wrapping_sub(1)) != "::" =>
            {
                let mut tree = Vec::new();
                i = use_tree(t, i + usize::from(w == "use"), Vec::new(), &mut tree) - 1;
                let named = |(l, p, glob)| Some((l, absolute(p, &scope, &children)?, glob));
                out.extend(tree.into_iter().filter_map(named));
            }
            "pub" if tok(t, i + 1) == "(" => {
                i += (i..t.len()).position(|k| tok(t, k) == ")").unwrap_or(0)
            }
            "mod" if tok(t, i + 2) == "{" => {
                inline.push(depth + 1);
                scope.push(tok(t, i + 1).to_string());
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// Makes a path written in module `scope` absolute, if it starts at `crate`, `self`, `super`
/// or a declared child module; `self` segments inside it (`a::{self}`) are dropped.
fn absolute(path: Vec<String>, scope: &[String], children: &BTreeSet<&str>) -> Option<Vec<String>> {
    let first = path.first()?.as_str();
    let ups = path.iter().take_while(|s| *s == "super").count();
    let (mut abs, skip) = match first {
        "crate" => (Vec::new(), 1),
        "self" => (scope.to_vec(), 1),
        "super" => (scope[..scope.len().checked_sub(ups)?].to_vec(), ups),
        _ if children.contains(first) => (scope.to_vec(), 0),
        _ => return None,
    };
    abs.extend(path.into_iter().skip(skip).filter(|s| s != "self"));
    Some(abs)
}

/// Expands the path or `use` tree at token `i` (`a::{b, c::{self, D as E}, *}`) into the full
/// paths it names, and returns the index of the token after it. An inline path
/// (`crate::a::f(…)`, `Vec::<T>`) is parsed as a tree without braces, so both share one parser.
fn use_tree(t: &[Token], mut i: usize, mut path: Vec<String>, out: &mut Vec<Named>) -> usize {
    let (prefix, line) = (path.len(), |k: usize| t.get(k).map_or(0, |t| t.1));
    loop {
        match tok(t, i) {
            "*" => {
                out.push((line(i), path, true));
                return i + 1;
            }
            "{" => {
                i += 1;
                while !matches!(tok(t, i), "}" | "") {
                    let at = i; // a `,` (or a stray token) parses as nothing: step over it
                    i = use_tree(t, i, path.clone(), out).max(at + 1);
                }
                return i + 1;
            }
            w if is_word(w) => path.push(w.to_string()),
            _ => break,
        }
        if tok(t, i + 1) != "::" {
            i += 1;
            break;
        }
        i += 2;
    }
    i += if tok(t, i) == "as" { 2 } else { 0 };
    if path.len() > prefix {
        out.push((line(i - 1), path, false));
    }
    i
}

/// Kosaraju's strongly connected components of the file graph: each one of two or more files
/// is a ring, reported whole rather than as one of its many cycles.
fn cycles(graph: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    /// Depth-first from `v`; each file is pushed to `out` after everything it reaches.
    fn dfs(g: &[Vec<usize>], v: usize, seen: &mut [bool], out: &mut Vec<usize>) {
        if !std::mem::replace(&mut seen[v], true) {
            g[v].iter().for_each(|&w| dfs(g, w, seen, out));
            out.push(v);
        }
    }
    let forward: Vec<Vec<usize>> = graph.iter().map(|s| s.iter().copied().collect()).collect();
    let mut backward = vec![Vec::new(); graph.len()];
    for (v, ws) in forward.iter().enumerate() {
        ws.iter().for_each(|&w| backward[w].push(v));
    }
    let (mut seen, mut order) = (vec![false; graph.len()], Vec::new());
    (0..graph.len()).for_each(|v| dfs(&forward, v, &mut seen, &mut order));
    let (mut seen, mut rings) = (vec![false; graph.len()], Vec::new());
    for &v in order.iter().rev() {
        let mut ring = Vec::new();
        dfs(&backward, v, &mut seen, &mut ring);
        if ring.len() > 1 {
            rings.push(ring);
        }
    }
    rings
}

/// The names an edge takes, comma-separated, for reports and self-test assertions alike.
fn join(names: &BTreeSet<String>) -> String {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    names.join(", ")
}

/// Reads every `.rs` file under `dir` as `(path relative to root, text)`: the only I/O, so
/// [`analyse`] stays a pure function the self-tests can feed.
fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    /// Fails the test with the path that could not be read.
    fn fail<T>(e: std::io::Error, path: &Path) -> T {
        panic!("cannot read {}: {e}", path.display())
    }
    for entry in fs::read_dir(dir).unwrap_or_else(|e| fail(e, dir)) {
        let path = entry.unwrap_or_else(|e| fail(e, dir)).path();
        if path.is_dir() {
            read_tree(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = fs::read_to_string(&path).unwrap_or_else(|e| fail(e, &path));
            let rel = path.strip_prefix(root).unwrap_or(&path).to_string_lossy();
            out.push((rel.replace('\\', "/"), text));
        }
    }
}

/// The real check: `src/` as it is now against [`LAYERS`].
#[test]
fn src_follows_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    read_tree(&root, &root, &mut files);
    files.sort();
    let r = analyse(&files, LAYERS);
    let (files, edges) = (r.files, r.edges.len());
    eprintln!("architecture: {files} files scanned, {edges} file edges found");
    let (n, all) = (r.problems.len(), r.problems.join("\n"));
    assert!(n == 0, "architecture: {n} problem(s) in src/ (how to read them: the //! of tests/architecture.rs)\n{all}");
}

/// The table the self-tests use: small, with two modules sharing the top rank.
const TEST_LAYERS: &[&[&str]] = &[&["base"], &["one"], &["two"], &["top", "peer"]];

/// Analyses a synthetic tree written as lines `--- path code…`, each followed by more lines
/// of that file (indentation trimmed); table modules it does not mention get an empty file.
fn run(spec: &str) -> Report {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in spec.lines().map(str::trim) {
        match (line.strip_prefix("--- "), files.last_mut()) {
            (Some(head), _) => {
                let (path, code) = head.split_once(' ').unwrap_or((head, ""));
                files.push((path.to_string(), format!("{code}\n")));
            }
            (None, Some((_, text))) => *text += &format!("{line}\n"),
            (None, None) => {}
        }
    }
    for m in TEST_LAYERS.concat() {
        if !files
            .iter()
            .any(|(p, _)| p.split(['.', '/']).next() == Some(m))
        {
            files.push((format!("{m}.rs"), String::new()));
        }
    }
    files.push(("lib.rs".to_string(), String::new())); // so paths out of the root resolve
    analyse(&files, TEST_LAYERS)
}

/// Asserts a report's problems are exactly `want`, printing them all when they are not.
fn expect(r: &Report, want: &[&str]) {
    assert_eq!(r.problems, want, "problems:\n{}", r.problems.join("\n"));
}

/// The edges of a report as `from → to: names` lines.
fn edges(r: &Report) -> Vec<String> {
    let line = |((a, b), n): (&(String, String), _)| format!("{a} → {b}: {}", join(n));
    r.edges.iter().map(line).collect()
}

/// A layer-0 module naming a layer-3 one is a back-import, reported with file and path.
#[test]
fn back_import_is_reported() {
    let r = run("--- base.rs use crate::top::Thing;\n--- top.rs pub struct Thing;");
    let want = "layer: src/base.rs (base, layer 0) uses top (layer 3, above it): crate::top::Thing (line 1)";
    expect(&r, &[want]);
}

/// Two modules of one rank may not use each other; a downward import stays allowed.
#[test]
fn same_rank_sibling_import_is_reported() {
    let r = run("--- top.rs use crate::base::B;\n fn f() { crate::peer::g() }");
    let want =
        "layer: src/top.rs (top, layer 3) uses peer (layer 3, a sibling): crate::peer::g (line 2)";
    expect(&r, &[want]);
}

/// A parent re-exporting its child's item while the child uses `super::` closes a cycle; a
/// bare `mod x;` is no edge, so `one/` has none.
#[test]
fn two_file_cycle_via_super_is_reported() {
    let r = run("
        --- two/mod.rs pub mod child; pub use child::Thing; pub struct Parent;
        --- two/child.rs use super::Parent; pub struct Thing;
        --- one/mod.rs mod quiet; pub struct X;
        --- one/quiet.rs use super::X;
    ");
    let want = "cycle: 2 files import each other: src/two/child.rs, src/two/mod.rs
    src/two/child.rs → src/two/mod.rs: Parent
    src/two/mod.rs → src/two/child.rs: Thing";
    expect(&r, &[want]);
}

/// A ring of three sibling files (two of its edges inline paths) is one component of three.
#[test]
fn three_file_cycle_is_reported() {
    let r = run("
        --- two/mod.rs mod x; mod y; mod z;
        --- two/x.rs use super::y::Y; pub struct X;
        --- two/y.rs pub struct Y; pub fn f() -> super::z::Z { todo!() }
        --- two/z.rs pub struct Z(super::x::X);
    ");
    let want = "cycle: 3 files import each other: src/two/x.rs, src/two/y.rs, src/two/z.rs
    src/two/x.rs → src/two/y.rs: Y
    src/two/y.rs → src/two/z.rs: Z
    src/two/z.rs → src/two/x.rs: X";
    expect(&r, &[want]);
}

/// Paths in comments, strings, raw strings and the `#[cfg(test)]` tail are not references;
/// a char literal `'"'`, lifetimes, a raw identifier and an inline module do not derail it.
#[test]
fn comments_strings_and_test_code_are_ignored() {
    let r = run(r###"
        --- base.rs pub fn real() {}
        --- top.rs //! Module docs mention crate::peer::A.
        /// So does an item's: [`crate::peer::B`].
        /* a block /* nested */ crate::peer::C */
        pub fn f<'a>(x: &'a str) -> char {
            let _q = '"'; let _s = "crate::peer::D \" still a string";
            let _r = r#"a "crate::peer::E" b"#;
            let r#type = '\''; // crate::peer::F
            crate::base::real();
            x.chars().next().unwrap_or(r#type)
        }
        pub mod defaults { use super::f; }
        #[cfg(test)]
        mod tests { use crate::peer::G; }
    "###);
    expect(&r, &[]);
    assert_eq!(edges(&r), ["src/top.rs → src/base.rs: real"]);
}

/// A multi-line `pub(crate) use` with nested braces, `self`, `as` and a glob reaches each file.
#[test]
fn nested_brace_use_resolves_to_the_right_files() {
    let r = run("
        --- top.rs pub(crate) use crate::{
            base::{self, B},
            two::{deep::{D as E}, *},
        };
        --- two/mod.rs pub mod deep;
        --- two/deep.rs pub struct D;
    ");
    expect(&r, &[]);
    let (base, deep) = (
        "src/top.rs → src/base.rs: B, base",
        "src/top.rs → src/two/deep.rs: D",
    );
    assert_eq!(edges(&r), [base, deep, "src/top.rs → src/two/mod.rs: *"]);
}

/// A module missing from the table, and a table entry with no module, both fail.
#[test]
fn unknown_and_stale_modules_are_reported() {
    let want = "table: src/ has the module `extra` but LAYERS does not rank it: add it to LAYERS";
    expect(&run("--- extra/mod.rs"), &[want]);
    let r = analyse(
        &[("base.rs".into(), String::new())],
        &[&["base"], &["ghost"]],
    );
    let want = "table: LAYERS ranks `ghost` (layer 1) but src/ has no ghost.rs or ghost/: drop the stale entry";
    expect(&r, &[want]);
}
