//! `server::sockopt`: the one socket option the standard library lacks, `IP_MULTICAST_IF`
//! (which interface multicast datagrams leave from). Without it Linux picks the interface
//! from the routing table, and the venue must send on 127.0.0.1 only.
//!
//! Cost: one `setsockopt` at start-up.

#![allow(
    unsafe_code,
    reason = "setsockopt(IP_MULTICAST_IF) has no safe wrapper in std; one call, see SAFETY"
)]

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsRawFd;

/// Sets `IP_MULTICAST_IF` of `socket` to `interface`.
pub fn set_multicast_if_v4(socket: &UdpSocket, interface: Ipv4Addr) -> std::io::Result<()> {
    let addr = libc::in_addr {
        s_addr: u32::from_ne_bytes(interface.octets()),
    };
    // SAFETY: the fd is a live socket borrowed from `socket` for the duration of the call;
    // `addr` is a valid `in_addr` on the stack and the length passed is exactly its size, so
    // the kernel reads only initialised memory we own.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            std::ptr::from_ref(&addr).cast::<libc::c_void>(),
            size_of::<libc::in_addr>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
