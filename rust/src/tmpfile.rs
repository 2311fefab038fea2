//! Temporary files for atomic writes (write, then rename over the target).

/// A `tempfile::Builder` whose files are created with mode 0o666 less the process umask,
/// like any file `open` creates. tempfile's default (0o600, private) would otherwise
/// become the mode of every `vocab.json` or token array renamed into place, which other
/// users (or a web server, a shared data folder) then cannot read.
pub fn builder<'a, 'b>() -> tempfile::Builder<'a, 'b> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder
}

// Tested from Python under set umasks (tests/test_file_modes.py): reading the umask here
// would need libc.
