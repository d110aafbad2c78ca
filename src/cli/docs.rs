//! Man pages and shell completions, generated from the clap definitions: `generate-docs` (hidden)
//! writes the checked-in `man/` and `completions/`; `install-docs` puts them where `man`, `git help`
//! and the shells look.

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Regenerate man/ and completions/ from the command definitions (for maintainers)
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The folder that gets man/ and completions/
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// Install the man pages and shell completions (then `git help dgrid` and `git dgrid --help` work)
#[derive(clap::Args, Debug)]
pub struct InstallArgs {
    /// Install everything under this prefix [default: the man pages beside this binary, in
    /// PREFIX/share/man of its PREFIX/bin, where man finds them through PATH; the completions
    /// under ~/.local]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
}

/// git's bash completion calls `_git_dgrid` for `git dgrid <TAB>`: complete as if the command line
/// were `git-dgrid ...`, with clap's completion function.
const BASH_GIT_GLUE: &str = r#"
# `git dgrid <TAB>`: git's completion calls _git_dgrid; complete as for `git-dgrid`.
_git_dgrid() {
    local at=1 i
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ "${COMP_WORDS[i]}" == dgrid ]]; then at=$i; break; fi
    done
    # Computed before the locals below shadow COMP_WORDS and COMP_CWORD.
    local -a dgrid_words=("dgrid" "${COMP_WORDS[@]:at+1}")
    local dgrid_cword=$((COMP_CWORD - at))
    local COMP_WORDS=("${dgrid_words[@]}") COMP_CWORD=$dgrid_cword
    local prev=""
    ((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD-1]}"
    _dgrid "dgrid" "${COMP_WORDS[COMP_CWORD]}" "$prev"
}
"#;

/// The command as a user sees it: clap_complete lists hidden subcommands too (the internal `hook`
/// and `generate-docs`), so completions are made from a copy without them.
fn visible(cmd: clap::Command) -> clap::Command {
    let subcommands: Vec<clap::Command> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut shown = clap::Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().cloned())
        .subcommands(subcommands)
        .subcommand_required(cmd.is_subcommand_required_set())
        .propagate_version(cmd.is_propagate_version_set());
    if let Some(long) = cmd.get_long_about() {
        shown = shown.long_about(long.clone());
    }
    if let Some(version) = cmd.get_version() {
        shown = shown.version(version.to_string());
    }
    if let Some(about) = cmd.get_about() {
        shown = shown.about(about.clone());
    }
    shown
}

/// Where bash-completion's loader lives, if it is installed: without it, a file in
/// share/bash-completion/completions is never read.
fn bash_completion_installed() -> bool {
    [
        "/usr/share/bash-completion/bash_completion",
        "/etc/bash_completion",
        "/usr/local/share/bash-completion/bash_completion",
        "/opt/homebrew/etc/profile.d/bash_completion.sh",
        "/usr/local/etc/profile.d/bash_completion.sh",
    ]
    .iter()
    .any(|p| Path::new(p).exists())
}

/// Every generated file: (path relative to the output folder, content).
pub fn generated() -> Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let cmd = super::Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone().name("git-dgrid")).render(&mut page)?;
    files.push(("man/git-dgrid.1".to_string(), page));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("git-dgrid-{}", sub.get_name());
        let mut page = Vec::new();
        let sub = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("git dgrid {}", sub.get_name()));
        clap_mangen::Man::new(sub).render(&mut page)?;
        files.push((format!("man/{name}.1"), page));
    }
    for (shell, file) in [
        (Shell::Bash, "git-dgrid.bash"),
        (Shell::Zsh, "_git-dgrid"),
        (Shell::Fish, "git-dgrid.fish"),
    ] {
        // clap_complete names its bash cases inconsistently for a hyphenated name, so bash gets a
        // hyphen-free one (`_dgrid`); the script registers it for `git-dgrid` itself.
        let name = if shell == Shell::Bash {
            "dgrid"
        } else {
            "git-dgrid"
        };
        let mut cmd = visible(super::Cli::command()).name(name);
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd, name, &mut out);
        if shell == Shell::Bash {
            let script =
                String::from_utf8(out)?.replace(" default dgrid\n", " default git-dgrid\n");
            out = script.into_bytes();
            out.extend_from_slice(BASH_GIT_GLUE.as_bytes());
        }
        files.push((format!("completions/{file}"), out));
    }
    Ok(files)
}

fn write_all(base: &Path, files: &[(String, PathBuf, Vec<u8>)]) -> Result<()> {
    for (_, target, content) in files {
        let path = base.join(target);
        let dir = path.parent().expect("files are in folders");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub fn run_generate(args: GenerateArgs) -> Result<()> {
    let files: Vec<(String, PathBuf, Vec<u8>)> = generated()?
        .into_iter()
        .map(|(n, c)| (n.clone(), PathBuf::from(n), c))
        .collect();
    write_all(&args.out, &files)?;
    eprintln!("wrote {} files under {}", files.len(), args.out.display());
    Ok(())
}

/// Where the pages and completions go: (completions, man pages). `--prefix` puts both there. By
/// default the completions go to ~/.local/share (bash-completion and fish look there) and the man
/// pages next to the running binary, `<prefix>/share/man` of its `<prefix>/bin`, because man finds
/// those through PATH without any MANPATH (man-db); a binary outside a `bin` folder of its own
/// (or in the system's /usr/bin) falls back to ~/.local.
fn install_prefixes(prefix: Option<PathBuf>) -> Result<(PathBuf, PathBuf)> {
    if let Some(p) = prefix {
        return Ok((p.clone(), p));
    }
    let local = PathBuf::from(std::env::var_os("HOME").context("HOME is not set: give --prefix")?)
        .join(".local");
    let beside_binary = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .filter(|dir| dir.file_name().is_some_and(|n| n == "bin"))
        .and_then(|bin| bin.parent().map(Path::to_path_buf))
        .filter(|p| p != Path::new("/usr") && p != Path::new("/"));
    Ok((local.clone(), beside_binary.unwrap_or(local)))
}

/// What `man -w git-dgrid` resolves to in this environment (None: man is missing or finds none).
fn man_finds() -> Option<PathBuf> {
    let out = std::process::Command::new("man")
        .args(["-w", "git-dgrid"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !found.is_empty()).then(|| PathBuf::from(found))
}

pub fn run_install(args: InstallArgs) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let (prefix, man_prefix) = install_prefixes(args.prefix)?;
    let files: Vec<(String, PathBuf, Vec<u8>)> = generated()?
        .into_iter()
        .map(|(name, content)| {
            let file = name.rsplit('/').next().unwrap_or(&name).to_string();
            let target = if name.starts_with("man/") {
                man_prefix.join("share/man/man1").join(&file)
            } else if file.ends_with(".bash") {
                // bash-completion loads completions/<command>; git's completion asks for git-dgrid.
                prefix.join("share/bash-completion/completions/git-dgrid")
            } else if file.starts_with('_') {
                prefix.join("share/zsh/site-functions").join(&file)
            } else {
                prefix.join("share/fish/vendor_completions.d").join(&file)
            };
            (name, target, content)
        })
        .collect();
    write_all(Path::new(""), &files)?;
    for (_, target, _) in &files {
        writeln!(out, "{}", target.display())?;
    }
    if !bash_completion_installed() {
        let bash = files.iter().find(|(name, _, _)| name.ends_with(".bash"));
        if let Some((_, target, _)) = bash {
            eprintln!(
                "Bash completion does nothing without the bash-completion package (not found \
                 here): install it (apt install bash-completion, brew install \
                 bash-completion@2), or add `source {}` to ~/.bashrc.",
                target.display()
            );
        }
    }
    let man = man_prefix.join("share/man");
    let page = man.join("man1/git-dgrid.1");
    let same = |found: &Path| {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canonical(found) == canonical(&page)
    };
    match man_finds() {
        Some(found) if same(&found) => {
            eprintln!("Installed: `git dgrid --help` and `git help dgrid` open the manual.")
        }
        found => {
            let why = match found {
                Some(other) => format!("man finds another page first ({})", other.display()),
                None => format!("man does not look in {} yet", man.display()),
            };
            eprintln!(
                "Installed, but {why}: export MANPATH=\"{}:$MANPATH\" for `git dgrid --help`. \
                 `git dgrid -h` prints the same help without man.",
                man.display(),
            );
        }
    }
    Ok(())
}
