//! Options from `$PARALLEL` and the profile files, read as GNU parallel 20221122 reads them:
//! `~/.parallel/config` (and the other configuration files), then `$PARALLEL`, then the
//! command line; `--profile NAME`/`-J NAME` instead of the config files; `--plain` for none.

mod common;

use common::{Scratch, weft};

/// `weft` with a home of its own and no configuration from the environment.
fn weft_at(home: &Scratch) -> assert_cmd::Command {
    let mut cmd = weft();
    cmd.env("HOME", home.path())
        .env_remove("PARALLEL")
        .env_remove("PARALLEL_HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CONFIG_DIRS");
    cmd
}

#[test]
fn parallel_variable_holds_options_split_as_a_shell_splits_them() {
    let home = Scratch::new("profile-env");
    // GNU: "a\ta\nb\tb".
    weft_at(&home)
        .env("PARALLEL", "-k --tag")
        .args(["echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("a\ta\nb\tb\n");
    // A quoted word is one word; words that are not options start the command.
    weft_at(&home)
        .env("PARALLEL", "-j1 'echo x'")
        .args([":::", "a"])
        .assert()
        .success()
        .stdout("x a\n");
    // The command line comes last, so it wins.
    weft_at(&home)
        .env("PARALLEL", "--tagstring A")
        .args(["--tagstring", "B", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("B\ta\n");
}

#[test]
fn config_file_is_read_and_profile_replaces_it_and_plain_drops_both() {
    let home = Scratch::new("profile-files");
    std::fs::create_dir_all(home.join(".parallel")).unwrap();
    std::fs::write(home.join(".parallel/config"), "# a comment\n--tag -k\n").unwrap();
    std::fs::write(home.join(".parallel/pf"), "-k --tagstring X{}\n").unwrap();
    weft_at(&home)
        .args(["echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("a\ta\nb\tb\n");
    weft_at(&home)
        .args(["-J", "pf", "echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("Xa\ta\nXb\tb\n");
    // A profile that is not there is passed over, as GNU parallel passes it over.
    weft_at(&home)
        .args(["-k", "--profile", "nope", "echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("a\nb\n");
    weft_at(&home)
        .env("PARALLEL", "--tagstring P")
        .args(["-k", "--plain", "echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("a\nb\n");
    // $PARALLEL comes after the config file.
    weft_at(&home)
        .env("PARALLEL", "--tagstring P")
        .args(["echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("P\ta\nP\tb\n");
}

#[test]
fn parallel_env_code_runs_before_each_command_and_is_not_passed_on() {
    // GNU parallel's par_PARALLEL_ENV and par_do_not_export_PARALLEL_ENV: $PARALLEL_ENV (what
    // env_parallel sets) is shell code, or a file or fifo holding it, run before each
    // command; the jobs do not see it.
    let home = Scratch::new("parallel-env");
    weft_at(&home)
        .env("PARALLEL_ENV", "v='OK as variable'")
        .args(["{}", "$v", ":::", "echo"])
        .assert()
        .success()
        .stdout("OK as variable\n");
    let file = home.join("env");
    std::fs::write(&file, "v='OK as file'").unwrap();
    weft_at(&home)
        .env("PARALLEL_ENV", &file)
        .args([
            "-k",
            "echo $v {}; echo \"[$PARALLEL_ENV]\"",
            ":::",
            "1",
            "2",
        ])
        .assert()
        .success()
        .stdout("OK as file 1\n[]\nOK as file 2\n[]\n");
    // -v and --dry-run show the command as given.
    weft_at(&home)
        .env("PARALLEL_ENV", "v=x")
        .args(["--dry-run", "echo $v", ":::", "1"])
        .assert()
        .success()
        .stdout("echo $v 1\n");
}

#[test]
fn a_profile_holding_a_command_puts_it_before_the_command_lines_command() {
    // GNU parallel 20221122 (parallel(1), --profile): with `-j-1 nice` in ~/.parallel/p,
    // `parallel -J p echo ::: a` runs `nice echo a`.
    let home = Scratch::new("profile-command");
    std::fs::create_dir_all(home.join(".parallel")).unwrap();
    std::fs::write(home.join(".parallel/p"), "-j-1 nice\n").unwrap();
    weft_at(&home)
        .args(["-J", "p", "--dry-run", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("nice echo a\n");
    weft_at(&home)
        .args(["-J", "p", "echo", ":::", "a"])
        .assert()
        .success()
        .stdout("a\n");
    // Options alone (the common case) still come before the command line's.
    weft_at(&home)
        .env("PARALLEL", "-k --tag")
        .args(["echo", ":::", "a", "b"])
        .assert()
        .success()
        .stdout("a\ta\nb\tb\n");
}
