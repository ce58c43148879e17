//! `lab-responder PORT`: the real servers of the health-check cost benchmark
//! (`checker_cost` in tests/lab/keepalived.sh), as one process listening on every address
//! of its namespace. busybox httpd forks per connection, which under emulation would cost
//! more than the checks being measured; this answers thousands of connections a second on
//! a few threads.
//!
//! A connection that sends a request (anything up to a blank line) gets
//! `HTTP/1.0 200 OK` with a two-byte body and is closed; one that closes first (a TCP
//! check) is closed too. std only: run.sh builds it with rustc, without cargo, so it needs
//! no lock file and no registry.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

const RESPONSE: &[u8] =
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
const THREADS: usize = 8;

fn serve(mut conn: TcpStream) {
    // A checker that stalls must not hold a thread for longer than its own timeout.
    let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                request.extend_from_slice(&buf[..n]);
                if request.windows(4).any(|w| w == b"\r\n\r\n") || request.len() > 8192 {
                    break;
                }
            }
        }
    }
    let _ = conn.write_all(RESPONSE);
}

fn main() {
    let arg = std::env::args().nth(1);
    if matches!(arg.as_deref(), Some("--help" | "-h")) {
        println!("usage: lab-responder PORT  (answers every connection on PORT, any address)");
        return;
    }
    let port: u16 = match arg.map(|p| p.parse()) {
        Some(Ok(p)) => p,
        _ => {
            eprintln!("usage: lab-responder PORT");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lab-responder: cannot listen on port {port}: {e}");
            std::process::exit(1);
        }
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|_| {
            let listener = listener.try_clone().expect("a listener clone");
            std::thread::spawn(move || loop {
                match listener.accept() {
                    Ok((conn, _)) => serve(conn),
                    // Out of descriptors or a reset before accept: try again shortly.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
}
