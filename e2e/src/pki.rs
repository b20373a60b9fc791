//! Test TLS material for the controller's gRPC port, made with the `openssl` CLI (the test
//! cluster needs it too): a CA and a server certificate for [`SERVER_NAME`], mounted the way a
//! Kubernetes Secret volume is (`tls.crt`, `tls.key`, `ca.crt` are symlinks into `..data`, a
//! symlink to one folder per generation, swapped atomically), so [`TestPki::rotate`] exercises
//! the same file changes a rotated Secret makes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::harness::temp_dir;

/// The name in the server certificate; data planes connect to 127.0.0.1 and check this name
/// (`--controller-server-name`).
pub const SERVER_NAME: &str = "switchboard-controller.e2e.test";

/// A CA and server certificate, rotatable.
#[derive(Debug)]
pub struct TestPki {
    dir: PathBuf,
    generation: AtomicU32,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (needed for the TLS tests)");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes a new CA, and a server certificate it signed, into `dir`.
fn generate(dir: &Path, generation: u32) {
    std::fs::create_dir_all(dir).expect("create pki generation dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_subject = format!("/CN=switchboard e2e CA {generation}");
    let mut ca = vec!["req", "-x509", "-days", "2", "-subj", &ca_subject];
    ca.extend_from_slice(&ec);
    ca.extend_from_slice(&[
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let subject = format!("/CN={SERVER_NAME}");
    let mut csr = vec!["req", "-subj", &subject];
    csr.extend_from_slice(&ec);
    csr.extend_from_slice(&["-keyout", "tls.key", "-out", "tls.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "subjectAltName=DNS:{SERVER_NAME}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("write leaf.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "tls.crt",
        ],
    );
}

impl TestPki {
    /// A fresh CA and server certificate in a new temporary folder.
    pub fn new(label: &str) -> TestPki {
        let pki = TestPki {
            dir: temp_dir(&format!("pki-{label}")),
            generation: AtomicU32::new(0),
        };
        pki.rotate();
        pki
    }

    /// Replaces the CA, certificate and key with new ones (a new CA too) in one atomic symlink
    /// swap; returns the new generation's number.
    pub fn rotate(&self) -> u32 {
        let n = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let generation = self.dir.join(format!("..g{n}"));
        generate(&generation, n);
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&generation, &tmp).expect("symlink generation");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap ..data");
        for name in ["tls.crt", "tls.key", "ca.crt"] {
            let link = self.dir.join(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(self.dir.join("..data").join(name), &link)
                    .expect("symlink file");
            }
        }
        n
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server certificate (`--grpc-tls-cert`); follows rotations.
    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    /// The server key (`--grpc-tls-key`); follows rotations.
    pub fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// The current CA (`--controller-ca`); follows rotations.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The CA of one generation; does not follow rotations.
    pub fn ca_of(&self, generation: u32) -> PathBuf {
        self.dir.join(format!("..g{generation}")).join("ca.crt")
    }
}
