//! Replacement strings, `-I`, appended arguments, and shell quoting: whatever the input holds,
//! it reaches the command as one literal argument and is never run or substituted again.

mod common;

use common::{BACKENDS, Scratch, weft, weft_on};

#[test]
fn path_strings_edit_the_argument_as_gnu_parallel_does() {
    for backend in BACKENDS {
        weft_on(backend)
            .arg("-k")
            .args(["echo", "{}", "{.}", "{/}", "{//}", "{/.}", ":::"])
            .args(["/x/y.tar.gz", "dir.d/file", "plain", ".hidden", "/top"])
            .assert()
            .success()
            .stdout(
                "/x/y.tar.gz /x/y.tar y.tar.gz /x y.tar\n\
                 dir.d/file dir.d/file file dir.d file\n\
                 plain plain plain . plain\n\
                 .hidden .hidden .hidden . .hidden\n\
                 /top /top top / top\n",
            );
    }
}

#[test]
fn positional_strings_pick_a_source_and_edit_it() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "echo"])
            .args([
                "{2}", "{1}", "{1.}", "{1/}", "{1//}", "{1/.}", "{2/.}", "[{3}]",
            ])
            .args([":::", "a/b.c", ":::", "/d/e.f", "g"])
            .assert()
            .success()
            .stdout("/d/e.f a/b.c a/b b.c a b e []\ng a/b.c a/b b.c a b g []\n");
    }
}

#[test]
fn job_number_counts_from_one_and_slot_stays_within_the_workers() {
    for backend in BACKENDS {
        let out = weft_on(backend)
            .args(["-j2", "-k", "echo", "{#}", "{%}"])
            .args([":::", "a", "b", "c", "d", "e"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let got = common::lines(&out);
        assert_eq!(got.len(), 5, "{got:?}");
        for (i, line) in got.iter().enumerate() {
            let (seq, slot) = line.split_once(' ').unwrap();
            assert_eq!(seq, (i + 1).to_string());
            assert!(
                slot == "1" || slot == "2",
                "{}: slot {slot}",
                backend.name()
            );
        }
        weft_on(backend)
            .args(["-j1", "-k", "echo", "{#}{%}"])
            .args([":::", "a", "b", "c"])
            .assert()
            .success()
            .stdout("11\n21\n31\n");
    }
}

#[test]
fn dash_i_renames_the_whole_argument_string_and_leaves_braces_alone() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-I", "XX", "-k"])
            .args(["echo", "XX", "{}", "{.}", "@XX@", ":::", "a.b"])
            .assert()
            .success()
            .stdout("a.b {} a @a.b@\n");
    }
}

#[test]
fn without_a_replacement_string_the_arguments_are_appended_one_word_each() {
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "printf", "[%s]"])
            .args([":::", "a b", "c", ":::", "1"])
            .assert()
            .success()
            .stdout("[a b][1][c][1]");
        weft_on(backend)
            .args(["-n", "2", "-k", "printf '[%s]' {}"])
            .args([":::", "a b", "c", "d"])
            .assert()
            .success()
            .stdout("[a b][c][d]");
    }
}

#[test]
fn without_a_command_each_record_is_a_command() {
    for backend in BACKENDS {
        weft_on(backend)
            .arg("-k")
            .write_stdin("echo a\necho b   c\nprintf '%s|' x y")
            .assert()
            .success()
            .stdout("a\nb c\nx|y|");
        weft_on(backend)
            .args(["-k", ":::", "echo", "printf '<%s>'"])
            .args([":::", "a", "b"])
            .assert()
            .success()
            .stdout("a\nb\n<a><b>");
    }
}

#[test]
fn replacement_strings_inside_the_input_are_never_substituted_again() {
    let data = ["{}", "{#}", "{%}", "{1}", "{.}", "{/}", "XX"];
    let expected: String = data.iter().map(|d| format!("[{d}]\n")).collect();
    for backend in BACKENDS {
        weft_on(backend)
            .args(["-k", "printf '[%s]\\n' {}", ":::"])
            .args(data)
            .assert()
            .success()
            .stdout(expected.clone());
        weft_on(backend)
            .args(["-I", "XX", "-k", "printf '[%s]\\n' XX"])
            .write_stdin(data.join("\n"))
            .assert()
            .success()
            .stdout(expected.clone());
    }
}

#[test]
fn unknown_braces_are_plain_text() {
    // {-1} is GNU parallel's last argument, not text.
    weft()
        .args([
            "-k", "echo", "{x}", "{print}", "{-1}", "{}", "{-x}", ":::", "a",
        ])
        .assert()
        .success()
        .stdout("{x} {print} a a {-x}\n");
}

/// Inputs that would create the file `pwned` (or list the directory, or read a variable) if
/// the shell ever interpreted them.
const HOSTILE: [&str; 20] = [
    "; touch pwned",
    "$(touch pwned)",
    "`touch pwned`",
    "' ; touch pwned ; '",
    "\" ; touch pwned ; \"",
    "&& touch pwned",
    "| touch pwned",
    "> pwned",
    "${IFS}touch${IFS}pwned",
    "$HOME",
    "*",
    "~",
    "-n",
    "--help",
    "it's",
    "\\",
    "",
    " leading and trailing ",
    "a\ntouch pwned",
    "tab\there",
];

fn expected_echo(inputs: &[&str]) -> String {
    inputs.iter().map(|h| format!("[{h}]\n")).collect()
}

#[test]
fn hostile_arguments_arrive_as_one_literal_word_and_never_run() {
    for backend in BACKENDS {
        for command in [
            "printf '[%s]\\n' {}",
            "printf '[%s]\\n' {1}",
            "printf '[%s]\\n'",
        ] {
            let dir = Scratch::new(&format!("hostile-{}", backend.name()));
            std::fs::write(dir.join("existing"), "").unwrap();
            weft_on(backend)
                .args(["-k", command, ":::"])
                .args(HOSTILE)
                .current_dir(dir.path())
                .assert()
                .success()
                .stdout(expected_echo(&HOSTILE));
            assert_eq!(dir.files(), ["existing"], "{} {command}", backend.name());
        }
    }
}

#[test]
fn hostile_records_from_stdin_and_columns_never_run() {
    // Records cannot hold the newline that separates them.
    let records: Vec<&str> = HOSTILE
        .iter()
        .copied()
        .filter(|h| !h.contains('\n'))
        .collect();
    for backend in BACKENDS {
        let dir = Scratch::new(&format!("hostile-stdin-{}", backend.name()));
        std::fs::write(dir.join("existing"), "").unwrap();
        weft_on(backend)
            .args(["-k", "printf '[%s]\\n' {}"])
            .write_stdin(records.join("\n"))
            .current_dir(dir.path())
            .assert()
            .success()
            .stdout(expected_echo(&records));
        weft_on(backend)
            .args(["-k", "-I", "@@", "printf '[%s]\\n' @@"])
            .write_stdin(records.join("\n"))
            .current_dir(dir.path())
            .assert()
            .success()
            .stdout(expected_echo(&records));
        let rows: String = records.iter().map(|r| format!("x\u{1}{r}\n")).collect();
        // --trim n: --colsep would trim the blanks around columns, as GNU parallel does.
        weft_on(backend)
            .args(["-k", "--trim", "n", "--colsep", "\u{1}"])
            .arg("printf '[%s]\\n' {2} {2.}")
            .write_stdin(rows)
            .current_dir(dir.path())
            .assert()
            .success()
            .stdout(
                records
                    .iter()
                    .map(|r| format!("[{r}]\n[{}]\n", no_ext(r)))
                    .collect::<String>(),
            );
        assert_eq!(dir.files(), ["existing"], "{}", backend.name());
    }
}

/// `{.}` of a name without a `/`.
fn no_ext(s: &str) -> &str {
    match s.rfind('.') {
        Some(i) if i > 0 => &s[..i],
        _ => s,
    }
}
