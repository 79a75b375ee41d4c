//! `tools/*.ps1`, checked on Linux without PowerShell: each script parses with the PowerShell
//! tree-sitter grammar (crate `tree-sitter-powershell`) without an error or missing node, is
//! formatted (4-space indents, no tabs, no trailing blanks, lines of at most 120 columns), and
//! agrees with the package and the driver on the names it uses. This is a syntax check by a
//! grammar that is not Microsoft's parser: nothing here runs the script (docs/install.md marks
//! it [paper]).

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn scripts() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("tools"))
        .expect("tools/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ps1")))
        .collect();
    found.sort();
    found
}

/// The grammar's complaints: (row, column, kind) of every ERROR or MISSING node.
fn syntax_errors(source: &str) -> Vec<(usize, usize, String)> {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("PowerShell grammar");
    let tree = parser.parse(source, None).expect("parse");
    let mut errors = Vec::new();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            let p = node.start_position();
            let what = if node.is_missing() {
                format!("missing {}", node.kind())
            } else {
                "error".to_owned()
            };
            errors.push((p.row + 1, p.column + 1, what));
        }
        let mut cursor = node.walk();
        stack.extend(node.children(&mut cursor));
    }
    errors.sort();
    errors
}

#[test]
fn there_is_the_install_script() {
    assert!(
        scripts().contains(&root().join("tools/wskclient-test.ps1")),
        "tools/wskclient-test.ps1 (docs/install.md, step 10) missing: {:?}",
        scripts()
    );
}

#[test]
fn every_script_parses() {
    for path in scripts() {
        let source = std::fs::read_to_string(&path).expect("read script");
        let errors = syntax_errors(&source);
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn the_grammar_rejects_a_broken_script() {
    // The check can fail: an unclosed block and an unclosed array are reported.
    let source = std::fs::read_to_string(root().join("tools/wskclient-test.ps1")).expect("read");
    let cut = source.rfind('}').expect("a closing brace");
    let unclosed = format!("{}{}", &source[..cut], &source[cut + 1..]);
    assert!(
        !syntax_errors(&unclosed).is_empty(),
        "a removed '}}' went unnoticed"
    );
    assert!(!syntax_errors("$x = @(1, 2\nWrite-Host 'a'\n").is_empty());
    assert!(!syntax_errors("foreach ($a in $b { 1 }\n").is_empty());
}

#[test]
fn every_script_is_formatted() {
    for path in scripts() {
        let source = std::fs::read_to_string(&path).expect("read script");
        assert!(
            source.ends_with('\n'),
            "{}: no final newline",
            path.display()
        );
        for (i, line) in source.lines().enumerate() {
            let at = format!("{}:{}", path.display(), i + 1);
            assert!(!line.contains('\t'), "{at}: tab");
            assert!(!line.ends_with(' '), "{at}: trailing blank");
            assert!(line.chars().count() <= 120, "{at}: longer than 120 columns");
            let indent = line.len() - line.trim_start().len();
            assert!(
                indent % 4 == 0,
                "{at}: indent of {indent} is not a multiple of 4"
            );
        }
    }
}

#[test]
fn install_script_uses_the_package_and_driver_names() {
    let script = std::fs::read_to_string(root().join("tools/wskclient-test.ps1")).expect("read");
    // `sc` is PowerShell's alias of Set-Content: the service control tool must be `sc.exe`.
    for (i, line) in script.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        assert!(
            !code.contains("& sc ") && !code.trim_start().starts_with("sc "),
            "tools/wskclient-test.ps1:{}: use sc.exe, not the sc alias",
            i + 1
        );
    }
    // The service and INF names are the INX's (tests/inf.rs checks AddService = wskclient).
    let inx = std::fs::read_to_string(root().join("wskclient.inx")).expect("read inx");
    assert!(inx.contains("AddService = wskclient,"));
    assert!(script.contains("$ServiceName = 'wskclient'"));
    assert!(script.contains("$InfName = 'wskclient.inf'"));
    // The DbgPrint lines it waits for are the ones src/kmdf.rs prints ({status:#010x} of
    // STATUS_SUCCESS is 0x00000000).
    let kmdf = std::fs::read_to_string(root().join("src/kmdf.rs")).expect("read kmdf.rs");
    assert!(kmdf.contains("wskclient: KMDF DriverEntry -> {status:#010x}"));
    assert!(script.contains("'wskclient: KMDF DriverEntry -> 0x00000000'"));
    assert!(kmdf.contains("wskclient: KMDF unloaded"));
    assert!(script.contains("'wskclient: KMDF unloaded'"));
    // The demo is run against the real device.
    assert!(script.contains("@('--device', 'windows', 'demo')"));
}
