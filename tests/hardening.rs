//! Node hardening, against the real binary and real sockets on loopback.
//!
//! - The home is its owner's alone: `shoal init` makes the directory 0700
//!   and the secret, config and store 0600; the control socket of a running
//!   node is 0600; exports written into the home are 0600, whether the node
//!   runs or not.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::common::test_key;
use crate::nodes::ServeNode;

/// A file's permission bits, in octal as `ls` and `chmod` write them.
fn mode(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:o}", meta.permissions().mode() & 0o777)
}

#[test]
fn the_home_and_its_control_socket_are_the_owners_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = ServeNode::init(dir.path(), "node", &test_key(0xa0));
    let home = node.home.clone();
    assert_eq!(mode(&home), "700", "the home directory");
    for f in ["secret", "config.toml", "store.redb"] {
        assert_eq!(mode(&home.join(f)), "600", "{f}");
    }
    node.post("something to export");
    node.start();
    assert_eq!(mode(&node.socket()), "600", "the control socket");
    // An export through the running node, into the home.
    let through_node = home.join("through-node.jsonl");
    node.ok([std::ffi::OsStr::new("export"), through_node.as_os_str()]);
    assert_eq!(mode(&through_node), "600", "an export through the node");
    node.stop();
    // And one with no node running.
    let direct = home.join("direct.jsonl");
    node.ok([std::ffi::OsStr::new("export"), direct.as_os_str()]);
    assert_eq!(mode(&direct), "600", "an export without a node");
    assert_eq!(
        std::fs::read(&direct).unwrap(),
        std::fs::read(&through_node).unwrap()
    );
    for f in ["secret", "config.toml", "store.redb"] {
        assert_eq!(mode(&home.join(f)), "600", "{f} after serving");
    }
}
