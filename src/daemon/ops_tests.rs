//! The daemon loop driving [`Ops`] on tokio's paused clock: READY=1 held
//! back by a resource failing from the start until the bound, watchdog
//! pings from the loop, STATUS= as resources fail and recover,
//! RELOADING=1/READY=1 around a reload and STOPPING=1 at the stop — read
//! from a datagram socket standing in for systemd's.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use super::Control;
use super::tests::{launch, paused};
use crate::engine::{Outcome, Step};
use crate::ops::health::READY_BOUND;
use crate::ops::{Notifier, Ops};

/// Everything the daemon sent since the last call.
fn drain(socket: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    while let Ok(n) = socket.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

#[test]
fn ready_waits_for_a_failing_resource_up_to_the_bound_and_the_loop_pings_meanwhile() {
    paused(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind");
        socket.set_nonblocking(true).expect("nonblocking");
        let notifier =
            Notifier::connect(&path.display().to_string(), Some(Duration::from_secs(10)))
                .expect("notifier");
        let ops = Ops::new(Some(notifier), "memory", vec!["first.toml".to_string()]);
        // Two keys wanted, one present: the guard refuses the first pass.
        let (mut h, daemon) = launch("min_keys = 2\n", None, Some(ops.clone()));
        let first = h.report().await;
        assert!(
            matches!(&first.outcomes[0].1, Outcome::Failed(f) if f.step == Step::Guard),
            "{first:?}"
        );
        let sent = drain(&socket);
        assert!(sent.iter().all(|m| !m.contains("READY=1")), "{sent:?}");
        assert!(
            sent.last().is_some_and(
                |m| m.ends_with("0 in sync, 1 failing: first.toml (guard); backend memory up")
            ),
            "{sent:?}"
        );
        let not_ready = ops.readiness().expect_err("failing");
        assert_eq!(not_ready.failing, vec![("first.toml".to_string(), "guard")]);

        // Just before the bound: still no READY, and a ping every 5 s.
        tokio::time::sleep(READY_BOUND - Duration::from_secs(2)).await;
        let sent = drain(&socket);
        assert!(sent.iter().all(|m| !m.contains("READY=1")), "{sent:?}");
        let pings = sent.iter().filter(|m| *m == "WATCHDOG=1").count();
        assert!((11..=13).contains(&pings), "{pings} pings: {sent:?}");
        // At the bound: READY, with the failure in STATUS.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let sent = drain(&socket);
        let ready: Vec<&String> = sent.iter().filter(|m| m.starts_with("READY=1")).collect();
        assert_eq!(ready.len(), 1, "{sent:?}");
        assert!(
            ready[0].contains("1 failing: first.toml (guard)"),
            "{sent:?}"
        );
        assert!(ops.readiness().is_err(), "READY=1 does not make /ready lie");

        // The data arrives: in sync, ready, and said so.
        h.backend.put("/app/b", "2");
        let report = h.report().await;
        assert!(report.all_ok(), "{report:?}");
        assert_eq!(ops.readiness(), Ok(()));
        let sent = drain(&socket);
        assert!(
            sent.iter()
                .any(|m| m == "STATUS=1 resource in sync; backend memory up"),
            "{sent:?}"
        );

        // A reload: RELOADING=1 with the time, then READY=1 after its pass.
        h.controls.send(Control::Reload).expect("reload");
        let _ = h.report().await;
        tokio::task::yield_now().await;
        let sent = drain(&socket);
        let reloading = sent
            .iter()
            .position(|m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="));
        let ready = sent.iter().position(|m| m.starts_with("READY=1"));
        assert!(
            matches!((reloading, ready), (Some(a), Some(b)) if a < b),
            "{sent:?}"
        );

        h.controls.send(Control::Stop).expect("stop");
        daemon.await.expect("daemon ends");
        let sent = drain(&socket);
        assert_eq!(
            sent.iter().filter(|m| m.starts_with("STOPPING=1")).count(),
            1,
            "{sent:?}"
        );
    });
}
