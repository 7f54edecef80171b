//! Small gaps between weft and GNU parallel 20221122 (issue 16, point 5): each test asserts
//! the output and exit status GNU parallel gives for the same command line.

mod common;

use common::*;

#[test]
fn linked_sources_stop_at_the_shortest_as_gnu_does() {
    // GNU: `parallel -k echo {1} {2} ::: a b c :::+ 1 2` prints "a 1\nb 2\n".
    weft()
        .args([
            "-k", "echo", "{1}", "{2}", ":::", "a", "b", "c", ":::+", "1", "2",
        ])
        .assert()
        .success()
        .stdout("a 1\nb 2\n");
}

#[test]
fn link_wraps_the_shorter_sources_as_gnu_does() {
    // GNU: `parallel -k --link echo {1} {2} ::: a b c ::: 1 2` prints "a 1\nb 2\nc 1\n".
    weft()
        .args(["-k", "--link", "echo", "{1}", "{2}"])
        .args([":::", "a", "b", "c", ":::", "1", "2"])
        .assert()
        .success()
        .stdout("a 1\nb 2\nc 1\n");
    // --xapply is GNU's older name for it.
    weft()
        .args([
            "-k", "--xapply", "echo", ":::", "a", "b", "c", ":::", "1", "2",
        ])
        .assert()
        .success()
        .stdout("a 1\nb 2\nc 1\n");
}

#[test]
fn a_first_linked_source_is_read_as_a_plain_one_as_gnu_does() {
    // GNU: `parallel -k echo ::::+ f ::: 1 2` (f holding x, y) prints every pair.
    let dir = Scratch::new("gaps-first-linked");
    std::fs::write(dir.join("f"), "x\ny\n").unwrap();
    weft()
        .args(["-k", "echo", "::::+"])
        .arg(dir.join("f"))
        .args([":::", "1", "2"])
        .assert()
        .success()
        .stdout("x 1\nx 2\ny 1\ny 2\n");
}

#[test]
fn slot_is_the_lowest_free_one_as_gnus_is() {
    // GNU: with -j2, job a ends at once and job b waits until job c has run, so c starts in
    // a's freed slot: `parallel -j2 -k ... {%}` prints "a 1\nb 2\nc 1\n".
    let dir = Scratch::new("gaps-slot");
    let fifo = dir.join("fifo");
    common::mkfifo(&fifo);
    let script = format!(
        "if [ {{}} = b ]; then cat {f} >/dev/null; fi; echo {{}} {{%}}; \
         if [ {{}} = c ]; then echo > {f}; fi",
        f = fifo.display()
    );
    for backend in BACKENDS {
        weft_on(backend)
            .timeout(std::time::Duration::from_secs(60))
            .args(["-j2", "-k", &script, ":::", "a", "b", "c"])
            .assert()
            .success()
            .stdout("a 1\nb 2\nc 1\n");
    }
}

#[test]
fn max_args_zero_runs_once_per_record_with_no_argument_as_gnu_does() {
    // GNU: `parallel -k -n0 echo x ::: a b c` prints "x\nx\nx\n".
    weft()
        .args(["-k", "-n0", "echo", "x", ":::", "a", "b", "c"])
        .assert()
        .success()
        .stdout("x\nx\nx\n");
}

#[test]
fn retries_zero_retries_until_the_job_succeeds_as_gnus_does() {
    // GNU: `--retries 0` retries without end; this job fails four times, then succeeds, so
    // GNU prints the fifth attempt's "try 5 a" and exits 0.
    let dir = Scratch::new("gaps-retries");
    let count = dir.join("count");
    let script = format!(
        "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; echo try $n {{}}; \
         [ $n -ge 5 ]",
        c = count.display()
    );
    weft()
        .timeout(std::time::Duration::from_secs(60))
        .args(["--retries", "0", &script, ":::", "a"])
        .assert()
        .success()
        .stdout("try 5 a\n");
}
