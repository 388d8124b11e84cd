//! Project edits through the engine: [`Engine::edit_project`], the one way front ends
//! change a stored project (policies, keys, members, limits).

use crate::project::{Project, ProjectId};
use crate::storage::StorageError;

use super::Engine;

/// How often [`Engine::edit_project`] reads the project again after another writer saved
/// it first, before it gives up with [`EditError::Storage`] (a conflict).
pub const MAX_EDIT_ATTEMPTS: u32 = 64;

/// Why [`Engine::edit_project`] saved nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError<E> {
    /// No project has this id (any more).
    #[error("no project with id {0}")]
    NotFound(ProjectId),
    /// The edit refused the project (its own error, unchanged).
    #[error(transparent)]
    Edit(E),
    /// Storage failed, or the edit takes a textid another project has, or other writers
    /// kept saving the project first ([`MAX_EDIT_ATTEMPTS`] times): a conflict.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl Engine {
    /// Applies `edit` to a fresh copy of project `id` and saves it; when another writer
    /// saved the project meanwhile, reads it again and applies `edit` to the new copy,
    /// so that no edit undoes another. Returns what `edit` returned on the copy that was
    /// saved. The engine's cached copy of the project is dropped once it is saved, so the
    /// next update is decided on the edited project.
    ///
    /// `edit` may run more than once, each time on a fresh copy: it should be a function
    /// of the project (check rights and limits in it, against the copy it gets).
    ///
    /// # Errors
    /// [`EditError::Edit`] when `edit` fails (nothing is saved), [`EditError::NotFound`],
    /// [`EditError::Storage`] when storage fails or refuses the save for another reason
    /// than a newer version (a textid taken: `Conflict`), or after
    /// [`MAX_EDIT_ATTEMPTS`] newer versions in a row.
    pub async fn edit_project<T, E>(
        &self,
        id: ProjectId,
        mut edit: impl FnMut(&mut Project) -> Result<T, E>,
    ) -> Result<T, EditError<E>> {
        let storage = self.storage();
        let mut attempts = 0;
        loop {
            let Some(fresh) = storage.project(id).await? else {
                return Err(EditError::NotFound(id));
            };
            let read_at = fresh.version;
            let mut project = fresh;
            let out = edit(&mut project).map_err(EditError::Edit)?;
            // The copy keeps the version it was read at: storage checks it.
            project.version = read_at;
            match storage.save_project(&project).await {
                Ok(()) => {
                    self.inner.projects.forget(id);
                    return Ok(out);
                }
                Err(e) if e.is_conflict() && attempts + 1 < MAX_EDIT_ATTEMPTS => {
                    let moved = storage
                        .project(id)
                        .await?
                        .is_none_or(|now| now.version != read_at);
                    if !moved {
                        // Same version: a taken textid, not another writer.
                        return Err(e.into());
                    }
                    attempts += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}
