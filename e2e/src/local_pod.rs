//! A Deployment's container set up the way a kubelet would, for running its binary as a local
//! process: the volumes it mounts are written into a temporary folder (Secrets, projected
//! ServiceAccount tokens, ConfigMaps, emptyDirs), every argument that names a mount path is
//! rewritten to that folder, and its environment is resolved (`value`, `fieldRef` to the pod's
//! name or namespace, `secretKeyRef`). The Deployment is read back from the API server, so what
//! runs is what the server accepted.
//!
//! As on a node, the pod exists: a Pod made from the template is stored on the API server (which
//! never runs it), and projected ServiceAccount tokens are bound to it, so the API server reports
//! the pod's name with them (TokenReview's `authentication.kubernetes.io/pod-name`).

use std::path::PathBuf;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::harness::temp_dir;
use crate::kube::Cluster;

/// One container of a Deployment, materialised locally.
#[derive(Clone, Debug)]
pub struct LocalPod {
    /// The binary: the file name of the container's `command[0]`.
    pub binary: String,
    /// The container's arguments, mount paths rewritten.
    pub args: Vec<String>,
    /// The container's environment, resolved.
    pub env: Vec<(String, String)>,
    /// (mount path, local folder) of every volume mount.
    pub mounts: Vec<(String, PathBuf)>,
    /// The pod's ServiceAccount.
    pub service_account: String,
    /// The local folders of its `emptyDir` volumes.
    empty_dirs: Vec<PathBuf>,
}

/// A Pod named `name` made from `deployment`'s pod template.
pub fn pod_from_deployment(deployment: &Value, name: &str) -> Value {
    let t = &deployment["spec"]["template"];
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": deployment["metadata"]["namespace"],
                        "labels": t["metadata"]["labels"]},
           "spec": t["spec"]})
}

fn get_json(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&cluster.must(&all, None)).expect("kubectl -o json")
}

fn decode(b64: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("Secret data is base64")
}

fn write_private(path: &std::path::Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create volume folder");
    }
    std::fs::write(path, bytes).expect("write volume file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// The files of a Secret or ConfigMap volume: every key, or the `items` it selects.
fn key_files(volume: &Value, data: &KeyData) -> Vec<(String, Vec<u8>)> {
    match volume["items"].as_array() {
        Some(items) => items
            .iter()
            .map(|i| {
                let key = i["key"].as_str().expect("item key");
                let bytes = data
                    .get(key)
                    .unwrap_or_else(|| panic!("volume item {key} is not in {volume}"));
                (i["path"].as_str().unwrap_or(key).to_string(), bytes)
            })
            .collect(),
        None => data.all(),
    }
}

/// The data of a Secret (base64) or a ConfigMap (text).
struct KeyData(Vec<(String, Vec<u8>)>);

impl KeyData {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }
    fn all(&self) -> Vec<(String, Vec<u8>)> {
        self.0.clone()
    }
}

impl LocalPod {
    /// Reads Deployment `name` in `namespace` and materialises its container `container` as pod
    /// `pod_name` (stored on the API server, unless it exists already).
    pub fn materialize(
        cluster: &Cluster,
        namespace: &str,
        name: &str,
        container: &str,
        pod_name: &str,
    ) -> LocalPod {
        let deployment = get_json(cluster, &["get", "deployment", name, "-n", namespace]);
        let spec = &deployment["spec"]["template"]["spec"];
        let service_account = spec["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let c = spec["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["name"] == container)
            .unwrap_or_else(|| panic!("no container {container} in deployment {name}"));
        let dir = temp_dir(&format!("pod-{pod_name}"));
        if cluster
            .kubectl(
                &["get", "pod", pod_name, "-n", namespace, "-o", "name"],
                None,
            )
            .is_err()
        {
            let pod = pod_from_deployment(&deployment, pod_name);
            cluster.must(&["create", "-f", "-"], Some(&pod.to_string()));
        }

        // Volumes: one folder each.
        let mut volume_dirs = Vec::new();
        let mut empty_dirs = Vec::new();
        for v in spec["volumes"].as_array().into_iter().flatten() {
            let vname = v["name"].as_str().expect("volume name");
            let vdir = dir.join(vname);
            std::fs::create_dir_all(&vdir).expect("create volume folder");
            if let Some(secret) = v.get("secret") {
                let sname = secret["secretName"].as_str().expect("secretName");
                let s = get_json(cluster, &["get", "secret", sname, "-n", namespace]);
                let data = KeyData(
                    s["data"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), decode(v.as_str().unwrap_or_default())))
                        .collect(),
                );
                for (path, bytes) in key_files(secret, &data) {
                    write_private(&vdir.join(path), &bytes);
                }
            } else if let Some(cm) = v.get("configMap") {
                let cname = cm["name"].as_str().expect("configMap name");
                let m = get_json(cluster, &["get", "configmap", cname, "-n", namespace]);
                let data = KeyData(
                    m["data"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().unwrap_or_default().as_bytes().to_vec(),
                            )
                        })
                        .collect(),
                );
                for (path, bytes) in key_files(cm, &data) {
                    write_private(&vdir.join(path), &bytes);
                }
            } else if let Some(projected) = v.get("projected") {
                for source in projected["sources"].as_array().into_iter().flatten() {
                    let token = source
                        .get("serviceAccountToken")
                        .unwrap_or_else(|| panic!("unsupported projected source {source}"));
                    let audience = token["audience"].as_str().expect("token audience");
                    let seconds = token["expirationSeconds"].as_u64().unwrap_or(3600);
                    // Bound to the pod, as the kubelet's tokens are.
                    let jwt = cluster.must(
                        &[
                            "create",
                            "token",
                            &service_account,
                            "-n",
                            namespace,
                            "--audience",
                            audience,
                            &format!("--duration={seconds}s"),
                            "--bound-object-kind=Pod",
                            &format!("--bound-object-name={pod_name}"),
                        ],
                        None,
                    );
                    let path = token["path"].as_str().expect("token path");
                    write_private(&vdir.join(path), jwt.trim().as_bytes());
                }
            } else if v.get("emptyDir").is_some() {
                empty_dirs.push(vdir.clone());
            } else {
                panic!("unsupported volume {v}");
            }
            volume_dirs.push((vname.to_string(), vdir));
        }
        let mut mounts: Vec<(String, PathBuf)> = c["volumeMounts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let vname = m["name"].as_str().expect("mount name");
                let vdir = volume_dirs
                    .iter()
                    .find(|(n, _)| n == vname)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| panic!("mount of unknown volume {vname}"));
                (
                    m["mountPath"].as_str().expect("mountPath").to_string(),
                    vdir,
                )
            })
            .collect();
        // Longest mount path first, so nested mounts win.
        mounts.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let rewrite = |text: &str| -> String {
            for (path, local) in &mounts {
                if let Some(at) = text.find(path.as_str()) {
                    return format!(
                        "{}{}{}",
                        &text[..at],
                        local.display(),
                        &text[at + path.len()..]
                    );
                }
            }
            text.to_string()
        };

        let args = c["args"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| rewrite(a.as_str().expect("arg is a string")))
            .collect();
        let env = c["env"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let key = e["name"].as_str().expect("env name").to_string();
                let value = if let Some(v) = e["value"].as_str() {
                    rewrite(v)
                } else if let Some(field) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
                    match field {
                        "metadata.name" => pod_name.to_string(),
                        "metadata.namespace" => namespace.to_string(),
                        other => panic!("unsupported fieldRef {other}"),
                    }
                } else if let Some(sref) = e["valueFrom"]["secretKeyRef"].as_object() {
                    let sname = sref["name"].as_str().expect("secretKeyRef name");
                    let skey = sref["key"].as_str().expect("secretKeyRef key");
                    let s = get_json(cluster, &["get", "secret", sname, "-n", namespace]);
                    String::from_utf8(decode(s["data"][skey].as_str().unwrap_or_default()))
                        .expect("secret value is UTF-8")
                } else {
                    panic!("unsupported env {e}")
                };
                (key, value)
            })
            .collect();
        let command = c["command"][0]
            .as_str()
            .unwrap_or_else(|| panic!("container {container} has no command"));
        LocalPod {
            binary: command.rsplit('/').next().unwrap_or(command).to_string(),
            args,
            env,
            mounts,
            service_account,
            empty_dirs,
        }
    }

    /// Empties the pod's `emptyDir` volumes, as for a new pod (a data plane started again must
    /// not find the snapshot cache of the one before).
    pub fn reset_empty_dirs(&self) {
        for dir in &self.empty_dirs {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir).expect("recreate emptyDir folder");
        }
    }

    /// The arguments whose flag (the part before `=`) is not in `flags`.
    pub fn args_without(&self, flags: &[&str]) -> Vec<String> {
        self.args
            .iter()
            .filter(|a| !flags.contains(&a.split('=').next().unwrap_or_default()))
            .cloned()
            .collect()
    }

    /// The value of `--flag=value`, if the arguments have it.
    pub fn arg(&self, flag: &str) -> Option<String> {
        self.args.iter().find_map(|a| {
            a.split_once('=')
                .filter(|(f, _)| *f == flag)
                .map(|(_, v)| v.to_string())
        })
    }

    /// The local folder of the volume mounted at `mount_path`.
    pub fn mount(&self, mount_path: &str) -> PathBuf {
        self.mounts
            .iter()
            .find(|(p, _)| p == mount_path)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("nothing is mounted at {mount_path}"))
    }
}
