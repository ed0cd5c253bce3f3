//! A TCP stream that knows when the kernel received what it last read (Linux's software
//! receive timestamps, `SO_TIMESTAMPING`). Over loopback that is the moment the server's
//! write handed the bytes over: the fan-out measures it beside the moment the subscriber
//! read them, because on a machine shared with 10,000 subscribers the two differ by however
//! long the subscribers' process waited for a core.

use std::{
    io::{self, Write},
    net::Shutdown,
    os::fd::{AsRawFd, RawFd},
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf, unix::AsyncFd},
    net::TcpStream,
};

/// On `AsyncFd` rather than tokio's `TcpStream`, whose reads cannot carry control messages:
/// `AsyncFd` lets a short read clear the readiness, as tokio's own stream does, so reading
/// a message costs one `recvmsg`, not a second one that finds nothing.
pub struct StampedStream {
    tcp: AsyncFd<std::net::TcpStream>,
    /// Unix µs of the last read that carried a timestamp; 0 before any.
    received_at: u64,
}

impl StampedStream {
    pub fn new(tcp: TcpStream) -> io::Result<Self> {
        // Non-blocking still: tokio's streams are.
        let tcp = tcp.into_std()?;
        let flags = libc::SOF_TIMESTAMPING_RX_SOFTWARE | libc::SOF_TIMESTAMPING_SOFTWARE;
        // SAFETY: a valid socket and a c_uint option of the size given.
        let result = unsafe {
            libc::setsockopt(
                tcp.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPING,
                (&raw const flags).cast(),
                size_of_val(&flags) as libc::socklen_t,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the std stream owns its descriptor, and the AsyncFd owns the stream.
        let tcp = unsafe { AsyncFd::register(tcp)? };
        Ok(Self { tcp, received_at: 0 })
    }

    /// When the kernel received the bytes of the last read (unix µs).
    pub fn received_at(&self) -> u64 {
        self.received_at
    }
}

impl AsyncRead for StampedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut ready = ready!(this.tcp.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let room = unfilled.len();
            match ready.try_io(|tcp| receive(tcp.as_raw_fd(), unfilled)) {
                Ok(Ok((read, stamp))) => {
                    // Less than asked for: the socket is drained (epoll is edge-triggered).
                    if read > 0 && read < room {
                        ready.clear_ready();
                    }
                    if let Some(stamp) = stamp {
                        this.received_at = stamp;
                    }
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(error)) => return Poll::Ready(Err(error)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for StampedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut ready = ready!(self.tcp.poll_write_ready(cx))?;
            if let Ok(written) = ready.try_io(|tcp| tcp.get_ref().write(buf)) {
                return Poll::Ready(written);
            }
        }
    }

    /// Nothing is buffered here.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.tcp.get_ref().shutdown(Shutdown::Write))
    }
}

/// One `recvmsg`: the bytes read, and the software receive timestamp (unix µs) when the
/// kernel attached one.
fn receive(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<u64>)> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // Room for one SCM_TIMESTAMPING message (three timespecs), 8-byte aligned as cmsg wants.
    let mut control = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid empty header.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &raw mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = size_of_val(&control) as _;
    // SAFETY: the header points at a live buffer and control area of the lengths it states.
    let read = unsafe { libc::recvmsg(fd, &raw mut message, 0) };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the kernel filled the control area and set msg_controllen; the CMSG macros
    // walk only within it.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&raw const message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_TIMESTAMPING {
                // The first of the three is the software timestamp.
                let software: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast());
                stamp = Some(software.tv_sec as u64 * 1_000_000 + software.tv_nsec as u64 / 1_000);
            }
            header = libc::CMSG_NXTHDR(&raw const message, header);
        }
    }
    Ok((read as usize, stamp))
}
