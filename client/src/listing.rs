//! Whole directory listings, read page by page.

use std::future::Future;

use proto::fs::{DirEntry, FsOp, FsReply};

/// Why a listing failed: the request failed, or the answer was not a page.
#[derive(Debug)]
pub enum ListError<E> {
    /// Asking for a page failed.
    Ask(E),
    /// A reply other than a page of the listing.
    NotAPage(FsReply),
}

impl<E: std::fmt::Display> std::fmt::Display for ListError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListError::Ask(e) => write!(f, "{e}"),
            ListError::NotAPage(reply) => write!(f, "unexpected reply to readdir: {reply:?}"),
        }
    }
}

/// Every entry of directory `dir` but `.` and `..`, asked for in pages of `page` entries by
/// `ask` (one `FsOp::ReadDir` each, without attributes) until the listing ends.
pub async fn list_dir<E, Fut>(
    dir: u64,
    page: u32,
    mut ask: impl FnMut(FsOp) -> Fut,
) -> Result<Vec<DirEntry>, ListError<E>>
where
    Fut: Future<Output = Result<FsReply, E>>,
{
    let mut out = Vec::new();
    let mut cookie = None;
    loop {
        let op = FsOp::ReadDir {
            dir,
            cookie: cookie.take(),
            max: page,
            plus: false,
        };
        match ask(op).await.map_err(ListError::Ask)? {
            FsReply::Dir {
                entries,
                cookie: next,
            } => {
                out.extend(entries.into_iter().filter(|e| e.name != b"." && e.name != b".."));
                match next {
                    Some(c) => cookie = Some(c),
                    None => return Ok(out),
                }
            }
            other => return Err(ListError::NotAPage(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crdt::model::FileKind;

    fn entry(name: &str) -> DirEntry {
        DirEntry {
            name: name.as_bytes().to_vec(),
            ino: 2,
            kind: FileKind::File,
            attr: None,
        }
    }

    #[tokio::test]
    async fn pages_are_followed_to_the_end_and_the_dots_left_out() {
        let mut asked = Vec::new();
        let got = list_dir::<(), _>(1, 2, |op| {
            let FsOp::ReadDir { cookie, .. } = &op else {
                panic!()
            };
            asked.push(cookie.clone());
            let reply = match cookie.as_deref() {
                None => FsReply::Dir {
                    entries: vec![entry("."), entry(".."), entry("a")],
                    cookie: Some(b"a".to_vec()),
                },
                Some(_) => FsReply::Dir {
                    entries: vec![entry("b")],
                    cookie: None,
                },
            };
            async move { Ok(reply) }
        })
        .await
        .unwrap();
        let names: Vec<_> = got.iter().map(|e| e.name.clone()).collect();
        assert_eq!(names, vec![b"a".to_vec(), b"b".to_vec()]);
        assert_eq!(asked, vec![None, Some(b"a".to_vec())]);
        let bad = list_dir::<(), _>(1, 2, |_| async { Ok(FsReply::Done) }).await;
        assert!(matches!(bad, Err(ListError::NotAPage(FsReply::Done))));
    }
}
