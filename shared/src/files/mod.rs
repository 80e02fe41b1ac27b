//! Files shared in rooms. Bytes never travel through the WebSocket: the client declares an
//! upload, PUTs the bytes to a short-lived URL, then sends `file_message`. Before the file is
//! shown, the server checks the size and sniffs the real type from the bytes (the name and the
//! declared type are not trusted); anything else is rejected and deleted. Downloads go through
//! a short-lived signed URL handed only to members of the room.
//!
//! Storage is a port: a local folder with each file sealed with its room's key
//! (`mathia-local`), or S3 with presigned URLs (AWS and the emulated mode).

pub use crate::{
    adapters::files::{local, s3},
    ports::{FileStore, MAX_BYTES, StoreError, URL_TTL},
};

/// The allowed kinds: extension → the types sniffing must find.
const ALLOWED: &[(&str, &[&str])] = &[
    ("txt", &["text/plain"]),
    ("pdf", &["application/pdf"]),
    ("doc", &["application/msword", "application/x-ole-storage"]),
    ("docx", &["application/vnd.openxmlformats-officedocument.wordprocessingml.document", "application/zip"]),
    ("jpg", &["image/jpeg"]),
    ("jpeg", &["image/jpeg"]),
    ("png", &["image/png"]),
];

pub fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).filter(|e| ALLOWED.iter().any(|(x, _)| x == e))
}

/// A name safe to show and to put in a download header: no paths, no control or quoting
/// characters, at most 120 characters, the extension kept.
pub fn sanitize_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = base
        .chars()
        .filter(|c| !crate::domain::is_invisible_control(*c))
        .map(|c| if c.is_control() || "\"<>:|?*;`$".contains(c) { '_' } else { c })
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_owned();
    let cleaned = if cleaned.is_empty() { "file".to_owned() } else { cleaned };
    if cleaned.chars().count() <= 120 {
        return cleaned;
    }
    let ext = cleaned.rsplit_once('.').map(|(_, e)| e.to_owned()).unwrap_or_default();
    let head: String = cleaned.chars().take(110).collect();
    format!("{head}….{ext}")
}

/// What the bytes really are, if that is allowed for the file's extension.
pub fn sniff(name: &str, bytes: &[u8]) -> Result<&'static str, String> {
    if bytes.len() as i64 > MAX_BYTES {
        return Err(format!("files are at most 5 MB; this one is {:.1} MB", bytes.len() as f64 / 1_048_576.0));
    }
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let ext = extension(name).ok_or("only .txt, .pdf, .doc, .docx, .jpg, .jpeg and .png files can be shared")?;
    let sniffed: &'static str = match infer::get(bytes) {
        Some(kind) => kind.mime_type(),
        None if looks_like_plain_text(bytes) => "text/plain",
        None => return Err("the file's contents are not a type that can be shared".into()),
    };
    let allowed = ALLOWED.iter().find(|(x, _)| *x == ext).map(|(_, t)| *t).unwrap_or(&[]);
    if !allowed.contains(&sniffed) {
        return Err(format!("the file is named .{ext} but its contents are {sniffed}"));
    }
    // Report the specific type for the family the extension names.
    Ok(match ext.as_str() {
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "doc" => "application/msword",
        _ => sniffed,
    })
}

/// UTF-8 text without NULs that is not markup a browser would run.
fn looks_like_plain_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else { return false };
    if text.contains('\0') {
        return false;
    }
    let head = text.trim_start().chars().take(512).collect::<String>().to_ascii_lowercase();
    !["<!doctype html", "<html", "<script", "<svg", "<?xml", "<body", "<head", "<iframe"]
        .iter()
        .any(|m| head.contains(m))
}

/// How long a declared upload may wait for its `file_message`.
pub const ABANDONED_AFTER: chrono::Duration = chrono::Duration::days(1);

/// The scheduler's sweep: uploads declared over a day ago and never shared go, bytes and row.
pub async fn sweep_abandoned(app: &crate::app::App) -> usize {
    let cutoff = app.clock.now() - ABANDONED_AFTER;
    let ids = match crate::adapters::postgres::files::take_abandoned(&app.db, cutoff).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "cannot sweep abandoned uploads");
            return 0;
        }
    };
    for id in &ids {
        if let Err(e) = app.files.delete(*id).await {
            tracing::warn!(error = %e, file_id = %id, "cannot delete an abandoned upload");
        }
    }
    ids.len()
}

/// Makes `file_id` shareable as an attachment in `room_id` by the person who declared it: the
/// bytes are read back, their size and real type checked, and the file accepted (from then on
/// the upload URL cannot change it) — or rejected and deleted. A file already accepted is
/// simply its row. Membership is the caller's check.
pub async fn accept_upload(
    app: &crate::app::App,
    uploader_id: uuid::Uuid,
    room_id: uuid::Uuid,
    file_id: uuid::Uuid,
) -> crate::Result<crate::adapters::postgres::files::FileRow> {
    use crate::{adapters::postgres::files as rows, error::Error};
    let mut file = rows::get(&app.db, file_id)
        .await?
        .filter(|f| f.room_id == room_id && f.uploader_id == uploader_id)
        .ok_or_else(|| Error::invalid("no upload of yours with that file_id in this room"))?;
    match file.status.as_str() {
        "rejected" => Err(Error::invalid("that file was rejected")),
        "ready" => Ok(file),
        _ => {
            let bytes = match app.files.read(file_id, room_id).await {
                Ok(bytes) => bytes,
                Err(StoreError::Missing) => {
                    return Err(Error::invalid("the file was never uploaded: PUT it to upload_url first"));
                }
                Err(StoreError::TooLarge) => {
                    let _ = app.files.delete(file_id).await;
                    rows::mark_rejected(&app.db, file_id).await?;
                    return Err(Error::invalid("file rejected: files are at most 5 MB"));
                }
                Err(e) => return Err(e.into()),
            };
            match sniff(&file.name, &bytes) {
                Ok(content_type) => {
                    app.files.accept(file_id, room_id, &bytes).await?;
                    rows::mark_ready(&app.db, file_id, content_type, bytes.len() as i64).await?;
                    file.status = "ready".into();
                    Ok(file)
                }
                Err(reason) => {
                    let _ = app.files.delete(file_id).await;
                    rows::mark_rejected(&app.db, file_id).await?;
                    Err(Error::invalid(format!("file rejected: {reason}")))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_real_type_decides() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
        assert_eq!(sniff("pic.png", &png), Ok("image/png"));
        assert!(sniff("pic.jpg", &png).is_err(), "a PNG named .jpg");
        let exe = [b'M', b'Z', 0x90, 0, 3, 0, 0, 0, 4, 0, 0, 0, 0xFF, 0xFF, 0, 0];
        assert!(sniff("totally-a-picture.png", &exe).is_err());
        assert!(sniff("page.txt", b"<!DOCTYPE html><html><script>alert(1)</script>").is_err());
        assert_eq!(sniff("notes.txt", b"just some notes\nline two"), Ok("text/plain"));
        assert!(sniff("big.txt", &vec![b'a'; 6 * 1024 * 1024]).is_err());
        assert!(sniff("tool.exe", b"hello").is_err());
    }

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("C:\\Users\\x\\report \"final\".pdf"), "report _final_.pdf");
        assert_eq!(sanitize_name(".hidden"), "hidden");
        assert!(sanitize_name(&format!("{}.pdf", "a".repeat(300))).ends_with(".pdf"));
        assert_eq!(sanitize_name("\u{202E}txt.exe.png"), "txt.exe.png");
        assert_eq!(sanitize_name("in\u{200B}voice\u{2067}.pdf\u{FEFF}"), "invoice.pdf");
        assert_eq!(sanitize_name("\u{202E}\u{200F}"), "file");
    }
}
