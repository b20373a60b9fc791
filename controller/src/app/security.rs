//! The security flags of the gRPC port, checked against the source: which
//! transport and which data-plane authentication the command line asks for.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::Args;
use crate::error::Error;
use crate::grpc::auth::ReviewPolicy;
use crate::source::SourceSpec;

/// How data planes authenticate, as the flags ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataPlaneAuth {
    /// Not at all.
    Open,
    /// A shared bearer token from this file (directory mode).
    SharedToken(PathBuf),
    /// ServiceAccount tokens checked with TokenReview (`kube` mode).
    Kubernetes(ReviewPolicy),
}

/// How the gRPC port is secured, as the flags ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcSecurity {
    /// Certificate and key files; `None`: plaintext.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How data planes authenticate.
    pub auth: DataPlaneAuth,
}

/// Checks the security flags against the source: `kube` mode needs TLS and
/// at least one authorised ServiceAccount and refuses plaintext; directory
/// mode needs an explicit choice of TLS or `--grpc-insecure-plaintext`.
pub fn grpc_security(args: &Args) -> Result<GrpcSecurity, Error> {
    let invalid = |s: &str| Err(Error::InvalidFlags(s.to_string()));
    let tls = match (&args.grpc_tls_cert, &args.grpc_tls_key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    if tls.is_some() && args.grpc_insecure_plaintext {
        return invalid("--grpc-insecure-plaintext conflicts with --grpc-tls-cert/--grpc-tls-key");
    }
    match &args.source {
        SourceSpec::Kube => {
            if args.grpc_insecure_plaintext {
                return invalid(
                    "--grpc-insecure-plaintext is for `--source dir:` only: in Kubernetes mode snapshots (which carry provider keys) are served over TLS; give --grpc-tls-cert and --grpc-tls-key",
                );
            }
            if tls.is_none() {
                return invalid(
                    "Kubernetes mode serves snapshots (which carry provider keys) over TLS only: give --grpc-tls-cert and --grpc-tls-key",
                );
            }
            if args.dataplane_service_accounts.is_empty() {
                return invalid(
                    "Kubernetes mode needs at least one --dataplane-service-account NAMESPACE/NAME whose tokens may receive snapshots",
                );
            }
            if args.dataplane_token_file.is_some() {
                return invalid(
                    "--dataplane-token-file is for `--source dir:`; in Kubernetes mode data planes authenticate with ServiceAccount tokens",
                );
            }
            if args.dataplane_audience.trim().is_empty() {
                return invalid("--dataplane-audience must not be empty");
            }
            Ok(GrpcSecurity {
                tls,
                auth: DataPlaneAuth::Kubernetes(ReviewPolicy {
                    audience: args.dataplane_audience.trim().to_string(),
                    allowed: args
                        .dataplane_service_accounts
                        .iter()
                        .cloned()
                        .collect::<BTreeSet<_>>(),
                }),
            })
        }
        SourceSpec::Dir(_) => {
            if !args.dataplane_service_accounts.is_empty() {
                return invalid(
                    "--dataplane-service-account needs `--source kube` (tokens are checked with TokenReview); use --dataplane-token-file in directory mode",
                );
            }
            if tls.is_none() && !args.grpc_insecure_plaintext {
                return invalid(
                    "choose how snapshots (which carry provider keys) are served: --grpc-tls-cert and --grpc-tls-key, or --grpc-insecure-plaintext for local use",
                );
            }
            if tls.is_none() && args.dataplane_token_file.is_some() {
                return invalid(
                    "--dataplane-token-file needs TLS: a bearer token must not cross the network in plaintext",
                );
            }
            let auth = match &args.dataplane_token_file {
                Some(path) => DataPlaneAuth::SharedToken(path.clone()),
                None => DataPlaneAuth::Open,
            };
            Ok(GrpcSecurity { tls, auth })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn parse(args: &[&str]) -> Result<GrpcSecurity, String> {
        let args = Args::try_parse_from(
            std::iter::once("switchboard-controller").chain(args.iter().copied()),
        )
        .map_err(|e| e.to_string())?;
        grpc_security(&args).map_err(|e| e.to_string())
    }

    const TLS: [&str; 4] = [
        "--grpc-tls-cert",
        "/t/tls.crt",
        "--grpc-tls-key",
        "/t/tls.key",
    ];

    #[test]
    fn kubernetes_mode_requires_tls_and_authorised_service_accounts() {
        let err = parse(&["--dataplane-service-account", "sb/dp"]).unwrap_err();
        assert!(err.contains("--grpc-tls-cert"), "{err}");
        let err = parse(&[
            "--grpc-insecure-plaintext",
            "--dataplane-service-account",
            "sb/dp",
        ])
        .unwrap_err();
        assert!(err.contains("--source dir:"), "{err}");
        let err = parse(&TLS).unwrap_err();
        assert!(err.contains("--dataplane-service-account"), "{err}");
        let mut only_cert = TLS.to_vec();
        only_cert.truncate(2);
        assert!(
            parse(&only_cert).is_err(),
            "the key is required with the certificate"
        );
        assert!(parse(&[&TLS[..], &["--dataplane-service-account", "sb"]].concat()).is_err());

        let ok = parse(
            &[
                &TLS[..],
                &[
                    "--dataplane-service-account",
                    "sb/dp",
                    "--dataplane-service-account",
                    "other/dp",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(ok.tls, Some(("/t/tls.crt".into(), "/t/tls.key".into())));
        let DataPlaneAuth::Kubernetes(policy) = ok.auth else {
            panic!("{:?}", ok.auth)
        };
        assert_eq!(policy.audience, "switchboard-controller");
        assert_eq!(policy.allowed.len(), 2);
        let custom = parse(
            &[
                &TLS[..],
                &[
                    "--dataplane-service-account",
                    "sb/dp",
                    "--dataplane-audience",
                    "gw",
                ],
            ]
            .concat(),
        )
        .unwrap();
        assert!(matches!(custom.auth, DataPlaneAuth::Kubernetes(p) if p.audience == "gw"));
    }

    #[test]
    fn directory_mode_makes_plaintext_an_explicit_choice() {
        let err = parse(&["--source", "dir:/cfg"]).unwrap_err();
        assert!(err.contains("--grpc-insecure-plaintext"), "{err}");
        let plain = parse(&["--source", "dir:/cfg", "--grpc-insecure-plaintext"]).unwrap();
        assert_eq!(
            plain,
            GrpcSecurity {
                tls: None,
                auth: DataPlaneAuth::Open
            }
        );
        assert!(
            parse(
                &[
                    &["--source", "dir:/cfg", "--grpc-insecure-plaintext"][..],
                    &TLS[..]
                ]
                .concat()
            )
            .is_err()
        );
        let err = parse(&[
            "--source",
            "dir:/cfg",
            "--grpc-insecure-plaintext",
            "--dataplane-token-file",
            "/t/token",
        ])
        .unwrap_err();
        assert!(err.contains("needs TLS"), "{err}");
        let shared = parse(
            &[
                &["--source", "dir:/cfg", "--dataplane-token-file", "/t/token"][..],
                &TLS[..],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(shared.auth, DataPlaneAuth::SharedToken("/t/token".into()));
        let open = parse(&[&["--source", "dir:/cfg"][..], &TLS[..]].concat()).unwrap();
        assert_eq!(open.auth, DataPlaneAuth::Open);
        let err = parse(
            &[
                &[
                    "--source",
                    "dir:/cfg",
                    "--dataplane-service-account",
                    "sb/dp",
                ][..],
                &TLS[..],
            ]
            .concat(),
        )
        .unwrap_err();
        assert!(err.contains("--source kube"), "{err}");
    }
}
