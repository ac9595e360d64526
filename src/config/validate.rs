//! Flags that cannot work with the chosen backend: refused by name (a flag a
//! backend would silently ignore meant something to whoever gave it).

use super::file::FileSettings;
use crate::backend::BackendKind;
use crate::cli::Flags;
use crate::error::ConfigError;

/// A flag given on the command line (or as `CONFD_*`) that the chosen backend
/// would silently ignore is an error: the user meant something by it. The same
/// setting in confd.toml is tolerated, so one file can serve several backends.
pub(super) fn reject_flags_the_backend_does_not_use(
    backend: BackendKind,
    flags: &Flags,
) -> Result<(), ConfigError> {
    // -auth-token and -datacenter also serve service(...) with any backend.
    let network_flags: [(&str, bool); 10] = [
        ("-node", !flags.connection.nodes.is_empty()),
        ("-username", flags.connection.username.is_some()),
        ("-password", flags.connection.password.is_some()),
        ("-basic-auth", flags.connection.basic_auth.is_some()),
        ("-client-cert", flags.connection.client_cert.is_some()),
        ("-client-key", flags.connection.client_key.is_some()),
        ("-client-ca-keys", flags.connection.client_ca_keys.is_some()),
        ("-scheme", flags.connection.scheme.is_some()),
        ("-srv-domain", flags.connection.srv_domain.is_some()),
        ("-srv-record", flags.connection.srv_record.is_some()),
    ];
    if !backend.is_networked()
        && let Some((flag, _)) = network_flags.iter().find(|(_, given)| *given)
    {
        let networked: Vec<&str> = BackendKind::ALL
            .iter()
            .filter(|k| k.is_networked())
            .map(|k| k.name())
            .collect();
        return Err(ConfigError::setting(
            *flag,
            format!(
                "only the {} backends use this flag, not the {backend} backend",
                networked.join(", ")
            ),
        ));
    }
    reject_vault_flags(backend, flags)?;
    if backend == BackendKind::Redis {
        if flags.connection.basic_auth.is_some() {
            return Err(ConfigError::setting(
                "-basic-auth",
                "Redis has no HTTP basic auth: -password (and -username for an ACL user) authenticate with AUTH",
            ));
        }
        if flags.connection.scheme.is_some() {
            return Err(ConfigError::setting(
                "-scheme",
                "the redis backend speaks TLS with rediss:// nodes or the TLS flags (-client-ca-keys, -client-cert)",
            ));
        }
    }
    let file_flags = [
        ("-file", !flags.files.is_empty()),
        ("-filter", flags.filter.is_some()),
    ];
    if backend != BackendKind::File
        && let Some((flag, _)) = file_flags.iter().find(|(_, given)| *given)
    {
        return Err(ConfigError::setting(
            *flag,
            format!("only the file backend uses this flag, not the {backend} backend"),
        ));
    }
    if backend != BackendKind::EtcdV3 && flags.connection.etcdv3_api.is_some() {
        return Err(ConfigError::setting(
            "-etcdv3-api",
            format!("only the etcdv3 backend uses this flag, not the {backend} backend"),
        ));
    }
    if backend != BackendKind::Redis && flags.separator.is_some() {
        return Err(ConfigError::setting(
            "-separator",
            format!("only the redis backend uses this flag, not the {backend} backend"),
        ));
    }
    Ok(())
}

/// Flags of confd's command line that name something this confd does not
/// have: accepted by the parser, so a confd unit file gets a message saying
/// what is missing instead of "unexpected argument", and then refused, since
/// ignoring them would render without what the user asked for. An empty
/// value counts as not given, as in confd.
pub(super) fn refuse_unsupported(flags: &Flags, file: &FileSettings) -> Result<(), ConfigError> {
    let given = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
    if given(&flags.table) || given(&file.table) {
        return Err(ConfigError::setting(
            "-table",
            "names a DynamoDB table, and this confd has no dynamodb backend; remove -table (confd.toml: table)",
        ));
    }
    let keyring = flags
        .secret_keyring
        .as_ref()
        .or(file.secret_keyring.as_ref());
    if keyring.is_some_and(|k| !k.as_os_str().is_empty()) {
        return Err(ConfigError::setting(
            "-secret-keyring",
            "PGP-encrypted values (confd's crypt functions) are not supported: confd documented them but never implemented them; remove -secret-keyring (confd.toml: secret_keyring)",
        ));
    }
    Ok(())
}

/// Vault's own flags with another backend, `-basic-auth` with Vault (which
/// has no basic auth), and app-id's flags (that method no longer exists).
fn reject_vault_flags(backend: BackendKind, flags: &Flags) -> Result<(), ConfigError> {
    let app_id = [
        ("-app-id", flags.app_id.is_some()),
        ("-user-id", flags.user_id.is_some()),
    ];
    if let Some((flag, _)) = app_id.iter().find(|(_, given)| *given) {
        return Err(ConfigError::setting(
            *flag,
            "Vault's app-id auth no longer exists (removed in Vault 1.12, never in OpenBao); use -auth-type app-role with -role-id and -secret-id",
        ));
    }
    let vault_flags = [
        ("-auth-type", flags.auth_type.is_some()),
        ("-role-id", flags.role_id.is_some()),
        ("-secret-id", flags.secret_id.is_some()),
        ("-path", flags.path.is_some()),
        (
            "-kubernetes-token-file",
            flags.kubernetes_token_file.is_some(),
        ),
    ];
    if backend != BackendKind::Vault
        && let Some((flag, _)) = vault_flags.iter().find(|(_, given)| *given)
    {
        return Err(ConfigError::setting(
            *flag,
            format!("only the vault backend uses this flag, not the {backend} backend"),
        ));
    }
    if backend == BackendKind::Vault && flags.connection.basic_auth.is_some() {
        return Err(ConfigError::setting(
            "-basic-auth",
            "the vault backend has no basic auth; -username and -password are userpass's (-auth-type userpass)",
        ));
    }
    Ok(())
}
