//! Large payloads under a low descriptor limit: each shared-memory region a payload travels in
//! holds a descriptor, so a long run of them must fall back to sending bytes inline rather than
//! run out. A file of its own because the limit is set for the whole test process (and the
//! workers it starts inherit it) before anything has read it.

mod common;

use std::time::Duration;

use common::{noise, pool, within};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use weft::Backend;
use weft::testing::{Echo, Fault};

#[test]
fn two_thousand_mib_payloads_run_under_ulimit_n_32() {
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, 32.min(hard), hard).unwrap();
    within(Duration::from_secs(180), || {
        let base = noise(1 << 20, 7);
        let mut p = pool(Backend::Process, 2).keep_order(true).build().unwrap();
        // The first job takes a while (it touches 256 MiB), so the outputs of the jobs after it
        // wait for it, dozens of regions' worth; the descriptor budget has them copied out.
        let jobs = (0..2000u64).map(|i| {
            let mut bytes = base.clone();
            bytes[..8].copy_from_slice(&i.to_le_bytes());
            Echo {
                bytes,
                fault: if i == 0 { Fault::Hog(256) } else { Fault::Ok },
            }
        });
        let mut done = 0;
        for o in p.map(jobs) {
            let index = o.seq - 1;
            let out = o.ok().expect("echo succeeds");
            assert_eq!(out[..8], index.to_le_bytes(), "job {index} is its own");
            assert!(out[8..] == base[8..], "job {index} byte-exact");
            done += 1;
        }
        assert_eq!(done, 2000);
    });
}
