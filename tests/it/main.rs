//! The end-to-end tests, in one binary so the shared harness in `common`
//! compiles once: the CLI in temporary folders, the backends against real
//! servers (etcd, Redis) or the in-tree Consul API test server, DNS, HAProxy, and the
//! template library and examples.

mod common;

mod cli;
mod confd_flags;
mod consul;
mod consul_server;
mod dns;
mod etcd;
mod haproxy;
mod library;
mod net;
mod redis;
