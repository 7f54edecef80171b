//! How many CPUs this process may use, counted as GNU parallel counts them: hardware threads,
//! physical cores and sockets. They answer `--number-of-threads`, `--number-of-cores`,
//! `--number-of-sockets` and `--number-of-cpus`, and are the basis of `-j N%`, `-j +N`,
//! `-j -N` and the default `-j` (`--use-cores-instead-of-threads`,
//! `--use-sockets-instead-of-threads`).
//!
//! The threads are what `std::thread::available_parallelism` reports: the process's CPU
//! affinity and its cgroup's CPU quota included, since a container's limit is what its user
//! means by "the CPUs". Cores and sockets come from /proc/cpuinfo and are capped by that
//! count, as GNU parallel caps them by the affinity mask. /proc/cpuinfo is read only when
//! cores or sockets are asked for.

/// What `-j N%`, `+N`, `-N` and the default count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Basis {
    /// Hardware threads (GNU parallel's default since 20160422, and weft's).
    #[default]
    Threads,
    /// Physical cores: `--use-cores-instead-of-threads`.
    Cores,
    /// Sockets: `--use-sockets-instead-of-threads`.
    Sockets,
}

impl Basis {
    /// The basis the options name: sockets over cores over threads, as in GNU parallel.
    /// `--use-cpus-instead-of-cores` changes nothing on the local machine in GNU parallel
    /// 20221122 (it applies to remote hosts only), so it is no argument here.
    pub(super) fn of(cores: bool, sockets: bool) -> Basis {
        if sockets {
            Basis::Sockets
        } else if cores {
            Basis::Cores
        } else {
            Basis::Threads
        }
    }

    /// This machine's count on this basis (at least 1).
    pub(super) fn count(self) -> usize {
        match self {
            Basis::Threads => threads(),
            Basis::Cores => Counts::here().cores,
            Basis::Sockets => Counts::here().sockets,
        }
    }
}

/// The hardware threads this process may run on (at least 1).
pub(super) fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The three counts of this machine, each at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) threads: usize,
    pub(super) cores: usize,
    pub(super) sockets: usize,
}

impl Counts {
    /// This machine's counts; without a readable /proc/cpuinfo, a core per thread and one
    /// socket.
    pub(super) fn here() -> Counts {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Counts::of(&info, threads())
    }

    /// The counts /proc/cpuinfo's text `info` gives, for a process allowed `active` threads.
    fn of(info: &str, active: usize) -> Counts {
        let mut sockets: Vec<&str> = Vec::new();
        let mut cores: Vec<(Option<&str>, &str)> = Vec::new();
        let mut physical = None;
        for line in info.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            // A core id is a core within its socket: the pair names a physical core.
            match key.trim() {
                "physical id" => {
                    physical = Some(value);
                    if !sockets.contains(&value) {
                        sockets.push(value);
                    }
                }
                "core id" if !cores.contains(&(physical, value)) => cores.push((physical, value)),
                _ => {}
            }
        }
        let active = active.max(1);
        // Without core ids (some virtual machines, most ARM kernels), each thread is a core.
        let cores = if cores.is_empty() {
            active
        } else {
            cores.len()
        };
        Counts {
            threads: active,
            cores: cores.min(active),
            sockets: sockets.len().clamp(1, active),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// /proc/cpuinfo of `n` processors, each line `(physical id, core id)`.
    fn cpuinfo(cpus: &[(u32, u32)]) -> String {
        cpus.iter()
            .enumerate()
            .map(|(i, (p, c))| {
                format!("processor\t: {i}\nphysical id\t: {p}\ncore id\t\t: {c}\nflags\t\t: x\n\n")
            })
            .collect()
    }

    // Each expectation is GNU parallel 20221122's answer given the same text in
    // PARALLEL_CPUINFO (`--number-of-threads`, `-cores`, `-sockets`).
    #[test]
    fn hyperthreads_on_two_sockets_count_as_cores_of_their_socket() {
        // Two sockets of two cores of two threads; core ids repeat across sockets.
        let info = cpuinfo(&[
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
            (0, 0),
            (0, 1),
            (1, 0),
            (1, 1),
        ]);
        let want = Counts {
            threads: 8,
            cores: 4,
            sockets: 2,
        };
        assert_eq!(Counts::of(&info, 8), want);
    }

    #[test]
    fn an_affinity_or_quota_caps_cores_and_sockets() {
        let info = cpuinfo(&[(0, 0), (0, 1), (1, 0), (1, 1)]);
        let want = Counts {
            threads: 1,
            cores: 1,
            sockets: 1,
        };
        assert_eq!(Counts::of(&info, 1), want);
        let want = Counts {
            threads: 3,
            cores: 3,
            sockets: 2,
        };
        assert_eq!(Counts::of(&info, 3), want);
    }

    #[test]
    fn without_core_ids_each_thread_is_a_core_on_one_socket() {
        let info = "processor\t: 0\nBogoMIPS\t: 50.00\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n";
        let want = Counts {
            threads: 2,
            cores: 2,
            sockets: 1,
        };
        assert_eq!(Counts::of(info, 2), want);
        assert_eq!(Counts::of("", 0).sockets, 1);
    }

    #[test]
    fn sockets_win_over_cores_as_the_basis() {
        assert_eq!(Basis::of(true, true), Basis::Sockets);
        assert_eq!(Basis::of(true, false), Basis::Cores);
        assert_eq!(Basis::of(false, false), Basis::Threads);
    }
}
