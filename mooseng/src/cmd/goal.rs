//! `mooseng admin goal get|set PATH [GOAL]`: a file's or directory's replication goal. New
//! entries inherit their directory's goal; `--recursive` also sets it on everything below.
//!
//! PATH is as [`crate::cmd::nspath`] reads it.

use anyhow::{Context as _, bail};
use clap::Subcommand;
use client::{MdsClient, ReadFrom};
use crdt::model::FileKind;
use proto::fs::{Cred, FsOp};
use proto::{Errno, FsReply};

use crate::cmd::nspath::PathArgs;

/// Storage classes: names for goals.
pub const CLASSES: &[(&str, u8)] = &[("default", 2), ("fast", 3)];

/// `mooseng admin goal …`.
#[derive(Debug, Subcommand)]
pub enum GoalCommand {
    /// Print the goal (copies per chunk) of PATH.
    Get(PathArgs),
    /// Set the goal of PATH to a number of copies (1–9) or a storage class (`default` = 2,
    /// `fast` = 3).
    Set {
        #[command(flatten)]
        path: PathArgs,
        /// Copies per chunk, or a storage class name.
        goal: String,
        /// Also set it on every file and directory below PATH.
        #[arg(long, short)]
        recursive: bool,
    },
}

/// Parses a goal: a number of copies or a class name.
pub fn parse_goal(s: &str) -> anyhow::Result<u8> {
    if let Some((_, g)) = CLASSES.iter().find(|(name, _)| *name == s) {
        return Ok(*g);
    }
    let names: Vec<&str> = CLASSES.iter().map(|c| c.0).collect();
    match s.parse::<u8>() {
        Ok(g @ 1..=9) => Ok(g),
        _ => bail!(
            "goal {s:?}: expected 1–9 copies or a storage class ({})",
            names.join(", ")
        ),
    }
}

fn class_of(goal: u8) -> String {
    CLASSES
        .iter()
        .find(|c| c.1 == goal)
        .map_or_else(String::new, |c| format!(" ({})", c.0))
}

/// Runs the subcommand.
pub async fn run(cmd: GoalCommand) -> anyhow::Result<()> {
    match cmd {
        GoalCommand::Get(p) => {
            let (client, ino) = p.open().await?;
            let goal = get(&client, ino).await?;
            println!("{}: {goal}{}", p.path.display(), class_of(goal));
        }
        GoalCommand::Set {
            path,
            goal,
            recursive,
        } => {
            let goal = parse_goal(&goal)?;
            let (client, ino) = path.open().await?;
            let mut todo = vec![ino];
            let mut done = 0u64;
            while let Some(ino) = todo.pop() {
                set(&client, ino, goal).await?;
                done += 1;
                if recursive {
                    todo.extend(subdirs_and_files(&client, ino).await?);
                    if done.is_multiple_of(1000) {
                        eprintln!("{done} entries set…");
                    }
                }
            }
            println!(
                "{}: {goal}{} ({done} entries)",
                path.path.display(),
                class_of(goal)
            );
        }
    }
    Ok(())
}

async fn get(client: &MdsClient, ino: u64) -> anyhow::Result<u8> {
    match client
        .fs(&Cred::root(), FsOp::GetGoal { ino }, ReadFrom::Leader)
        .await
    {
        Ok(FsReply::Goal(g)) => Ok(g),
        other => bail!("get the goal of inode {ino}: {other:?}"),
    }
}

async fn set(client: &MdsClient, ino: u64, goal: u8) -> anyhow::Result<()> {
    match client
        .fs(&Cred::root(), FsOp::SetGoal { ino, goal }, ReadFrom::Leader)
        .await
    {
        Ok(FsReply::Goal(_)) => Ok(()),
        other => bail!("set the goal of inode {ino}: {other:?}"),
    }
}

/// The directories and regular files in directory `dir` (nothing if `dir` is a file).
async fn subdirs_and_files(client: &MdsClient, dir: u64) -> anyhow::Result<Vec<u64>> {
    let cred = Cred::root();
    let listed = client::listing::list_dir(dir, 1000, |op| client.fs(&cred, op, ReadFrom::Leader)).await;
    match listed {
        Ok(entries) => Ok(entries
            .iter()
            .filter(|e| matches!(e.kind, FileKind::Dir | FileKind::File))
            .map(|e| e.ino)
            .collect()),
        Err(client::listing::ListError::Ask(client::ClientError::Fs(Errno::ENOTDIR))) => Ok(Vec::new()),
        Err(e) => Err(anyhow::anyhow!("list inode {dir}: {e}")).context("walk the tree"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_are_numbers_or_classes() {
        assert_eq!(parse_goal("fast").unwrap(), 3);
        assert_eq!(parse_goal("default").unwrap(), 2);
        assert_eq!(parse_goal("9").unwrap(), 9);
        for bad in ["0", "10", "slow", ""] {
            assert!(parse_goal(bad).is_err(), "{bad:?}");
        }
    }
}
