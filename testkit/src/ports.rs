//! Ports for the servers of a test cluster.
//!
//! A port is chosen, checked free, and bound by the server a moment later. Two things can take
//! it in between: any socket bound to port 0 (every QUIC client endpoint) gets a port from the
//! kernel's ephemeral range, and another test process choosing at the same time. So ports come
//! from below the ephemeral range, in turn across every test process of the machine (a counter
//! in the temporary directory, under a file lock).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, UdpSocket};

/// The lowest port handed out.
const FIRST: u16 = 10_000;
/// Where the kernel's ephemeral range starts when `/proc` does not say (Linux's default).
const EPHEMERAL_DEFAULT: u16 = 32_768;

/// A loopback port free for both TCP and UDP right now, outside the ephemeral range and not
/// handed to any other test process recently.
pub fn free_port() -> u16 {
    free_ports(1)
}

/// The first of `n` consecutive loopback ports, each free for both TCP and UDP right now,
/// outside the ephemeral range and not handed to any other test process recently (for a
/// program that derives its ports from a base, like `mooseng demo --base-port`).
pub fn free_ports(n: u16) -> u16 {
    let end = ephemeral_start().max(FIRST + 1_000);
    let span = u32::from(end - FIRST - n);
    let counter = std::env::temp_dir().join("mooseng-testkit-next-port");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&counter)
        .expect("open the port counter");
    file.lock().expect("lock the port counter");
    let mut next = read_counter(&mut file).unwrap_or_else(std::process::id);
    for _ in 0..span {
        let base = FIRST + (next % span) as u16;
        next = next.wrapping_add(1);
        if (base..base + n).all(is_free) {
            write_counter(&mut file, next.wrapping_add(u32::from(n) - 1));
            return base;
        }
    }
    panic!("no {n} free consecutive ports in {FIRST}..{end}");
}

fn is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok()
}

/// The first port of the kernel's ephemeral range.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_DEFAULT)
}

fn read_counter(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

fn write_counter(file: &mut File, next: u32) {
    let written = file
        .set_len(0)
        .and_then(|()| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(next.to_string().as_bytes()));
    written.expect("write the port counter");
}
