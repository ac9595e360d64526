//! The systemd notification protocol (sd_notify(3)), spoken directly: one
//! datagram of `KEY=VALUE` lines to the Unix socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace). On by
//! itself when systemd sets the variable, as services expect.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends notifications to systemd. Sends never block the event loop: a
/// message that does not fit the socket's buffer right now is dropped
/// (systemd reads them at once; the next one carries the current state).
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asked for through the environment, if any.
    /// Fails only when `NOTIFY_SOCKET` is set but unusable.
    pub fn from_env() -> Option<Result<Notifier, String>> {
        let socket = std::env::var_os("NOTIFY_SOCKET")?;
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Some(Notifier::connect(&socket.to_string_lossy(), watchdog))
    }

    /// A notifier sending to `socket` (a path or `@abstract-name`).
    pub fn connect(socket: &str, watchdog: Option<Duration>) -> Result<Notifier, String> {
        let addr = match socket.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
            None if socket.starts_with('/') => SocketAddr::from_pathname(socket),
            None => {
                return Err(format!(
                    "NOTIFY_SOCKET {socket:?}: neither an absolute path nor an @abstract name"
                ));
            }
        }
        .map_err(|e| format!("NOTIFY_SOCKET {socket:?}: {e}"))?;
        let socket = UnixDatagram::unbound()
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| format!("cannot open a socket for NOTIFY_SOCKET: {e}"))?;
        Ok(Notifier {
            socket,
            addr,
            watchdog,
        })
    }

    /// How often systemd wants a sign of life (`WATCHDOG_USEC`), if at all.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends one message (lines of `KEY=VALUE`); failures are logged at
    /// debug level, since systemd going away is not confd's problem.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            tracing::debug!(error = %e, "cannot notify systemd");
        }
    }
}

/// The watchdog's period from `WATCHDOG_USEC`, when it is meant for this
/// process (`WATCHDOG_PID` unset or ours) and is a positive number.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid
        && pid.trim().parse::<u32>().ok() != Some(own_pid)
    {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// `CLOCK_MONOTONIC` in microseconds, as `MONOTONIC_USEC=` wants it (the
/// clock systemd compares reload requests against).
pub fn monotonic_usec() -> u64 {
    use nix::time::{ClockId, clock_gettime};
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
        let nanos = u64::try_from(t.tv_nsec()).unwrap_or(0);
        secs * 1_000_000 + nanos / 1_000
    })
}

/// Makes one `STATUS=` line of `text` (systemd shows a single line).
pub fn status_line(text: &str) -> String {
    format!("STATUS={}", text.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_is_ours_only_when_the_pid_matches_or_is_absent() {
        let second = Some(Duration::from_secs(1));
        assert_eq!(watchdog_interval(Some("1000000"), None, 7), second);
        assert_eq!(watchdog_interval(Some("1000000"), Some("7"), 7), second);
        assert_eq!(watchdog_interval(Some("1000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier::connect(&path.display().to_string(), None).expect("connect");
        notifier.send("READY=1");
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("confd-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let receiver = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        let notifier = Notifier::connect(&format!("@{name}"), None).expect("connect");
        notifier.send("STOPPING=1");
        let n = receiver.recv(&mut buf).expect("recv");
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn a_relative_socket_name_is_refused_with_the_variable_named() {
        let error = Notifier::connect("notify.sock", None).expect_err("relative");
        assert!(
            error.starts_with("NOTIFY_SOCKET \"notify.sock\""),
            "{error}"
        );
    }

    #[test]
    fn status_is_one_line() {
        assert_eq!(status_line("a\nb"), "STATUS=a b");
    }
}
