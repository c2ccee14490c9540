//! The command line, parsed by hand: the binary takes one option and one subcommand, which
//! does not justify an argument-parsing dependency.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The usage text printed by `--help` and after a usage error.
pub(crate) const USAGE: &str = "\
usage: tandem-server [--config FILE] [migrate]
       tandem-server --help | --version

Without a subcommand the server runs; `migrate` applies pending database migrations and exits.

options:
  --config FILE   read this INI file instead of conf/tandem.ini (which is optional)
  -h, --help      print this help and the configuration keys
  --version       print the version";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Invocation {
    /// Load the configuration and run a command.
    Run(CliArgs),
    /// Print the usage and exit.
    Help,
    /// Print the version and exit.
    Version,
}

/// The arguments of a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CliArgs {
    /// The INI file given with `--config`, which must then exist.
    pub(crate) config: Option<PathBuf>,
    /// What to run once the configuration is loaded.
    pub(crate) command: Command,
}

/// The subcommand.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Command {
    /// Serve HTTP until stopped; the default.
    #[default]
    Serve,
    /// Apply pending migrations, then exit.
    Migrate,
}

/// A command line that cannot be understood; the binary prints it with [`USAGE`] and exits
/// with status 2.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Parses the arguments that follow the program name.
///
/// `--help` and `--version` win over anything after them, as in most tools, so that
/// `tandem-server --config x --help` still helps.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Invocation, UsageError> {
    let mut parsed = CliArgs::default();
    let mut command = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // The value of --config may be any path; everything else must be text.
        let Some(text) = arg.to_str() else {
            return Err(UsageError(format!(
                "unexpected argument {}",
                arg.to_string_lossy()
            )));
        };
        match text {
            "-h" | "--help" => return Ok(Invocation::Help),
            "--version" => return Ok(Invocation::Version),
            "--config" => {
                let path = args
                    .next()
                    .filter(|path| !path.is_empty())
                    .ok_or_else(|| UsageError("--config needs a file name".to_owned()))?;
                set_config(&mut parsed, PathBuf::from(path))?;
            }
            _ if text.starts_with("--config=") => {
                let path = &text["--config=".len()..];
                if path.is_empty() {
                    return Err(UsageError("--config needs a file name".to_owned()));
                }
                set_config(&mut parsed, PathBuf::from(path))?;
            }
            "migrate" if command.is_none() => command = Some(Command::Migrate),
            _ if text.starts_with('-') => {
                return Err(UsageError(format!("unknown option {text}")));
            }
            _ => return Err(UsageError(format!("unexpected argument {text}"))),
        }
    }
    parsed.command = command.unwrap_or_default();
    Ok(Invocation::Run(parsed))
}

fn set_config(parsed: &mut CliArgs, path: PathBuf) -> Result<(), UsageError> {
    if parsed.config.is_some() {
        return Err(UsageError("--config is given twice".to_owned()));
    }
    parsed.config = Some(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::cli::{CliArgs, Command, Invocation, parse};

    #[track_caller]
    fn check(args: &[&str], expected: Result<Invocation, &str>) {
        let parsed = parse(args.iter().map(Into::into));
        let parsed = parsed.map_err(|err| err.to_string());
        assert_eq!(
            parsed,
            expected.map_err(str::to_owned),
            "arguments {args:?}"
        );
    }

    fn run(config: Option<&str>, command: Command) -> Result<Invocation, &'static str> {
        Ok(Invocation::Run(CliArgs {
            config: config.map(Into::into),
            command,
        }))
    }

    #[test]
    fn accepted_command_lines() {
        check(&[], run(None, Command::Serve));
        check(&["migrate"], run(None, Command::Migrate));
        check(&["--config", "a.ini"], run(Some("a.ini"), Command::Serve));
        check(&["--config=a.ini"], run(Some("a.ini"), Command::Serve));
        check(
            &["--config", "/etc/tandem/t.ini", "migrate"],
            run(Some("/etc/tandem/t.ini"), Command::Migrate),
        );
        check(
            &["migrate", "--config", "a.ini"],
            run(Some("a.ini"), Command::Migrate),
        );
        // A file name that looks like an option is still the value of --config.
        check(
            &["--config", "--odd.ini"],
            run(Some("--odd.ini"), Command::Serve),
        );
    }

    #[test]
    fn help_and_version_win() {
        check(&["--help"], Ok(Invocation::Help));
        check(&["-h"], Ok(Invocation::Help));
        check(&["--config", "a.ini", "--help"], Ok(Invocation::Help));
        check(&["--version"], Ok(Invocation::Version));
        check(&["migrate", "--version"], Ok(Invocation::Version));
    }

    #[test]
    fn usage_errors() {
        check(&["--verbose"], Err("unknown option --verbose"));
        check(&["-config", "a.ini"], Err("unknown option -config"));
        check(&["serve"], Err("unexpected argument serve"));
        check(&["migrate", "migrate"], Err("unexpected argument migrate"));
        check(&["--config"], Err("--config needs a file name"));
        check(&["--config", ""], Err("--config needs a file name"));
        check(&["--config="], Err("--config needs a file name"));
        check(
            &["--config", "a.ini", "--config=b.ini"],
            Err("--config is given twice"),
        );
    }

    #[cfg(unix)]
    #[test]
    fn config_path_need_not_be_utf8() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;

        let path = OsString::from_vec(b"conf/\xff.ini".to_vec());
        let parsed = parse([OsString::from("--config"), path.clone()]);
        assert_eq!(
            parsed,
            Ok(Invocation::Run(CliArgs {
                config: Some(path.into()),
                command: Command::Serve,
            }))
        );
    }
}
