//! A pod's volumes as kubectl describes them (`describeVolumes`), for the volume
//! sources a mast cluster uses; others show their kind only.

use k8s_openapi::api::core::v1::Volume;

use super::quantity::Amount;
use super::text::Out;

/// `Volumes:` and each volume; `space` is `"  "` inside a pod template.
pub fn describe(out: &mut Out, volumes: Option<&[Volume]>, space: &str) {
    let volumes = volumes.unwrap_or(&[]);
    if volumes.is_empty() {
        out.write(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    out.write(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        out.write(1, &format!("{name_indent}{}:\n", v.name));
        source(out, v);
    }
}

fn opt_bool(value: Option<bool>) -> String {
    value.map_or_else(|| "<nil>".to_string(), |b| b.to_string())
}

fn source(out: &mut Out, v: &Volume) {
    if let Some(h) = &v.host_path {
        out.write(
            2,
            &format!(
                "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                h.path,
                h.type_.as_deref().unwrap_or("<none>")
            ),
        );
    } else if let Some(e) = &v.empty_dir {
        let size = e
            .size_limit
            .as_ref()
            .map(|q| Amount::parse(&q.0))
            .filter(|a| a.milli > 0)
            .map_or_else(|| "<unset>".to_string(), |a| a.canonical());
        out.write(
            2,
            &format!(
                "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{size}\n",
                e.medium.as_deref().unwrap_or("")
            ),
        );
    } else if let Some(s) = &v.secret {
        out.write(
            2,
            &format!(
                "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                s.secret_name.as_deref().unwrap_or(""),
                s.optional.unwrap_or(false)
            ),
        );
    } else if let Some(c) = &v.config_map {
        out.write(
            2,
            &format!(
                "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                c.name,
                c.optional.unwrap_or(false)
            ),
        );
    } else if let Some(n) = &v.nfs {
        out.write(
            2,
            &format!(
                "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n    Server:\t{}\n    Path:\t{}\n    ReadOnly:\t{}\n",
                n.server,
                n.path,
                n.read_only.unwrap_or(false)
            ),
        );
    } else if let Some(c) = &v.persistent_volume_claim {
        out.write(
            2,
            &format!(
                "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                c.claim_name,
                c.read_only.unwrap_or(false)
            ),
        );
    } else if let Some(d) = &v.downward_api {
        out.write(
            2,
            "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n",
        );
        for item in d.items.iter().flatten() {
            if let Some(f) = &item.field_ref {
                out.write(3, &format!("{} -> {}\n", f.field_path, item.path));
            }
            if let Some(r) = &item.resource_field_ref {
                out.write(3, &format!("{} -> {}\n", r.resource, item.path));
            }
        }
    } else if let Some(p) = &v.projected {
        out.write(
            2,
            "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
        );
        for s in p.sources.iter().flatten() {
            if let Some(secret) = &s.secret {
                out.write(
                    2,
                    &format!(
                        "SecretName:\t{}\n    SecretOptionalName:\t{}\n",
                        secret.name,
                        opt_bool(secret.optional)
                    ),
                );
            } else if s.downward_api.is_some() {
                out.write(2, "DownwardAPI:\ttrue\n");
            } else if let Some(c) = &s.config_map {
                out.write(
                    2,
                    &format!(
                        "ConfigMapName:\t{}\n    ConfigMapOptional:\t{}\n",
                        c.name,
                        opt_bool(c.optional)
                    ),
                );
            } else if let Some(t) = &s.service_account_token {
                out.write(
                    2,
                    &format!(
                        "TokenExpirationSeconds:\t{}\n",
                        t.expiration_seconds.unwrap_or(0)
                    ),
                );
            }
        }
    } else if let Some(i) = &v.image {
        out.write(
            2,
            &format!(
                "Type:\tImage (a container image or OCI artifact)\n    Reference:\t{}\n    PullPolicy:\t{}\n",
                i.reference.as_deref().unwrap_or(""),
                i.pull_policy.as_deref().unwrap_or("")
            ),
        );
    } else {
        out.write(1, "<unknown>\n");
    }
}
