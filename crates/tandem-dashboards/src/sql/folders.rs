//! Moving a folder: the checks (no cycle, no nesting past Grafana's limit) and the write,
//! in one transaction with the moved folder's row locked, so two moves that would make a
//! cycle together queue on their rows and the second sees the first's parent.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use tandem_storage::{from_ms, now_ms};

use crate::sql::entity::folder;
use crate::sql::{MAX_FOLDER_DEPTH, folder_by_uid, to_folder};
use crate::{Error, Folder, FolderUid, MoveFolder, OrgId, Result, Version};

/// Moves `request.uid` under `request.parent_uid` inside the caller's transaction.
pub(crate) async fn move_in(conn: &impl ConnectionTrait, request: &MoveFolder) -> Result<Folder> {
    let org = request.org_id;
    let row = folder_by_uid(conn, org, request.uid.as_str(), true)
        .await?
        .ok_or(Error::FolderNotFound)?;
    let parent = request
        .parent_uid
        .as_ref()
        .map(|uid| uid.as_str().trim())
        .filter(|uid| !uid.is_empty());
    let mut parent_depth = 0;
    if let Some(parent) = parent {
        // Walk up from the new parent: meeting the folder itself is a cycle.
        let mut next = Some(parent.to_owned());
        while let Some(uid) = next {
            if uid == row.uid {
                return Err(Error::FolderCycle);
            }
            // Locked, so that two moves that together would make a cycle queue (or meet
            // in a deadlock, which the transaction retries) and the second sees the first.
            let above = folder_by_uid(conn, org, &uid, true)
                .await?
                .ok_or(Error::FolderNotFound)?;
            parent_depth += 1;
            if parent_depth > MAX_FOLDER_DEPTH {
                return Err(Error::FolderTooDeep(MAX_FOLDER_DEPTH));
            }
            next = above.parent_uid;
        }
    }
    if parent_depth + subtree_height(conn, org, &row.uid).await? > MAX_FOLDER_DEPTH {
        return Err(Error::FolderTooDeep(MAX_FOLDER_DEPTH));
    }
    let now = now_ms();
    folder::Entity::update_many()
        .col_expr(
            folder::Column::ParentUid,
            Expr::value(parent.map(str::to_owned)),
        )
        .col_expr(folder::Column::Version, Expr::value(row.version + 1))
        .col_expr(folder::Column::Updated, Expr::value(now))
        .col_expr(folder::Column::UpdatedBy, Expr::value(request.user_id.0))
        .filter(folder::Column::Id.eq(row.id))
        .exec(conn)
        .await?;
    Ok(Folder {
        parent_uid: parent.map(FolderUid::from),
        version: Version(row.version + 1),
        updated: from_ms(now),
        updated_by: request.user_id,
        ..to_folder(row)
    })
}

/// How many levels the folder and the folders below it span (1 for a folder with no
/// subfolders), counted level by level; stops past the limit.
async fn subtree_height(conn: &impl ConnectionTrait, org: OrgId, uid: &str) -> Result<usize> {
    let mut height = 1;
    let mut level = vec![uid.to_owned()];
    loop {
        let children: Vec<String> = folder::Entity::find()
            .select_only()
            .column(folder::Column::Uid)
            .filter(folder::Column::OrgId.eq(org.0))
            .filter(folder::Column::ParentUid.is_in(level.clone()))
            .into_tuple()
            .all(conn)
            .await?;
        if children.is_empty() || height > MAX_FOLDER_DEPTH {
            return Ok(height);
        }
        height += 1;
        level = children;
    }
}
