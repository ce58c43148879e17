//! The supervisor (Piranha's pulse, lvsd and nanny in one process): heartbeats and the
//! HA state machine, floating addresses and their announcement, health checks driving
//! the IPVS table, the control socket.
//!
//! The tree says which code may touch the world:
//! - [`logic`]: the decisions (HA state machine, heartbeat format and guard, nanny
//!   policy, the node plan, load weights). Plain functions and state machines: no
//!   sockets, files, processes or clock reads; time comes in as an argument. A test in
//!   this module fails if one of them imports an I/O facility.
//! - [`io`]: the supervisor's hands, each a thin shell over one facility: rtnetlink
//!   addresses, ARP/NA announcements, commands and scripts, health probes, load
//!   commands.
//! - [`task`]: the long-running tasks that join the two: the supervisor's wiring,
//!   what a start or reload begins with (`startup`: facts gathered, then a plan made
//!   without I/O), failover (heartbeat sockets around the HA machine), activation, the
//!   lvsd thread, the check tasks, the control socket and notifications.

pub mod io;
pub mod logic;
pub mod task;

#[cfg(test)]
mod tests {
    /// What a decision module may not name outside its tests: files, sockets,
    /// processes, threads, the clock, the kernel clients and the other two folders.
    const IO: &[&str] = &[
        "std::fs",
        "std::net::UdpSocket",
        "std::net::TcpStream",
        "std::net::TcpListener",
        "std::process",
        "std::thread",
        "tokio::",
        "socket2",
        "neli",
        "Instant::now",
        "SystemTime::now",
        "crate::ipvs::client",
        "crate::storage",
        "crate::pulse::io",
        "crate::pulse::task",
    ];

    #[test]
    fn decisions_do_no_io() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/pulse/logic");
        let mut seen = 0;
        let mut folders = vec![dir.clone()];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
                for (n, line) in code.lines().enumerate() {
                    let line = line.split("//").next().unwrap();
                    for word in IO {
                        assert!(
                            !line.contains(word),
                            "{}:{}: a decision module uses {word}: {line}",
                            path.display(),
                            n + 1
                        );
                    }
                }
                seen += 1;
            }
        }
        assert!(seen >= 8, "only {seen} files read in {}", dir.display());
    }
}
