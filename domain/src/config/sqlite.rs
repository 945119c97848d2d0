//! SQLite database URLs: which ones are SQLite, which file they name, and preparing that file.

use std::path::{Path, PathBuf};

/// True when `url` names an SQLite database (`sqlite:` and `sqlite://` URLs, file or memory);
/// false for PostgreSQL and anything else. The one answer every crate asks.
pub fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The file of an SQLite URL (`sqlite://var/users.db?mode=rwc` → `var/users.db`); `None` for
/// in-memory and non-SQLite URLs.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path.starts_with(":memory:") || query.contains("mode=memory");
    (!memory).then(|| PathBuf::from(path))
}

/// The folder that holds an SQLite URL's file (`sqlite://var/users.db?mode=rwc` → `var`), so a
/// service can create it before connecting; `None` for in-memory and non-SQLite URLs.
pub fn sqlite_folder(url: &str) -> Option<PathBuf> {
    sqlite_file(url)?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
}

/// Creates the folder of an SQLite URL's file if it is missing: SQLite creates the file
/// (`mode=rwc`) but not its folder, `./var/` on a fresh checkout. Folders it creates are
/// readable by their owner only (0700 on Unix); existing ones are left as they are.
pub fn create_sqlite_folder(url: &str) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match sqlite_folder(url) {
        Some(folder) => builder.create(&folder).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot create the database folder {}: {e}",
                    folder.display()
                ),
            )
        }),
        None => Ok(()),
    }
}

/// Prepares an SQLite URL's file before SQLite opens it: its folder (0700, see
/// [`create_sqlite_folder`]) and, when missing, the file itself, empty and readable by its
/// owner only (0600). SQLite would create it 0644, and its `-wal` and `-shm` files take the
/// database file's mode. Nothing to do for in-memory and non-SQLite URLs.
pub fn prepare_sqlite_file(url: &str) -> std::io::Result<()> {
    create_sqlite_folder(url)?;
    let Some(path) = sqlite_file(url) else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(std::io::Error::new(
            e.kind(),
            format!("cannot create the database file {}: {e}", path.display()),
        )),
    }
}
