//! The command line every Facteur binary accepts: `[--config PATH]` and `-h`/`--help`.

use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Start, with the configuration file named by `--config` if any (else `FACTEUR_CONFIG`,
    /// else `./config.yaml`; see [`super::Config::load`]).
    Run(Option<PathBuf>),
    /// Print the program's help text and exit 0.
    Help,
}

/// Reads the arguments after the program name: `--config PATH`, `--config=PATH`, `-h` or
/// `--help`. A later `--config` replaces an earlier one. Reading stops at the first `-h` or
/// `--help`, or at the first argument it does not know: an error that names it, for the
/// caller to print before exiting 2.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut path = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--config" => match args.next() {
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err("--config needs a path".into()),
            },
            other => match other.strip_prefix("--config=") {
                Some("") => return Err("--config needs a path".into()),
                Some(p) => path = Some(PathBuf::from(p)),
                None => return Err(format!("unknown argument {other:?}")),
            },
        }
    }
    Ok(Command::Run(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn a_config_path_comes_in_either_spelling() {
        assert_eq!(parse(&[]), Ok(Command::Run(None)));
        let expected = Ok(Command::Run(Some(PathBuf::from("a.yaml"))));
        assert_eq!(parse(&["--config", "a.yaml"]), expected);
        assert_eq!(parse(&["--config=a.yaml"]), expected);
        assert_eq!(parse(&["--config", "x.yaml", "--config=a.yaml"]), expected);
    }

    #[test]
    fn help_stops_the_reading_and_anything_else_is_named() {
        assert_eq!(parse(&["-h"]), Ok(Command::Help));
        assert_eq!(parse(&["--config", "a.yaml", "--help"]), Ok(Command::Help));
        assert_eq!(parse(&["--config"]), Err("--config needs a path".into()));
        assert_eq!(parse(&["--config="]), Err("--config needs a path".into()));
        let error = parse(&["--verbose"]).unwrap_err();
        assert!(error.contains("\"--verbose\""), "{error}");
    }
}
