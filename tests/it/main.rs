//! The end-to-end tests, in one binary so the shared harness in `common`
//! compiles once: the CLI in temporary folders, the backends against real
//! servers (etcd, Redis, OpenBao) or the in-tree Consul API test server, DNS,
//! HAProxy, the template library and examples, and `confd migrate` against the
//! bytes Go confd 0.16 renders.

mod common;

mod announce;
mod check_format;
mod cli;
mod confd_flags;
mod consul;
mod consul_server;
mod consul_sessions;
mod dns;
mod etcd;
mod etcdv3_grpc;
mod haproxy;
mod library;
mod membership;
mod migrate;
mod migrate_cli;
mod net;
mod ops;
mod package;
mod redis;
mod scenario_dns;
mod scenario_ha;
mod seed;
mod vault;
mod vault_daemon;
