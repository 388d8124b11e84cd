//! Write transactions on a connection that need not come from a pool.
//!
//! sqlx gives a pool's connection back with a spawned task and a ping: for SQLite a round
//! trip to the connection's thread, between every two write transactions of its one
//! writer. Under load, the next batch's `BEGIN` waited 0.2–0.8 ms for it. A backend with
//! one writer connection keeps it behind a lock instead ([`WriteConn`]), and its
//! transactions are [`WriteTx`]: `BEGIN` when made, `COMMIT` by [`WriteTx::commit`], rolled
//! back when dropped otherwise, as sqlx's own `Transaction`.

use std::ops::{Deref, DerefMut};

use sqlx::{Database, SqlSafeStr};
use sqlx_core::transaction::TransactionManager;

/// A connection to write on, as long as it is held: a pool's connection, or a lock on a
/// backend's one writer connection.
pub type WriteConn<DB> = Box<dyn DerefMut<Target = <DB as Database>::Connection> + Send>;

/// A write transaction on a [`WriteConn`]; an executor as `&mut *tx`.
pub struct WriteTx<DB: Database> {
    conn: WriteConn<DB>,
    open: bool,
}

impl<DB: Database> WriteTx<DB> {
    /// Begins a transaction on `conn` with `statement` (`BEGIN`, `BEGIN IMMEDIATE`, …).
    ///
    /// # Errors
    /// When the database refuses the statement.
    pub async fn begin(
        mut conn: WriteConn<DB>,
        statement: &'static str,
    ) -> Result<Self, sqlx::Error> {
        DB::TransactionManager::begin(&mut conn, Some(statement.into_sql_str())).await?;
        Ok(WriteTx { conn, open: true })
    }

    /// Commits the transaction.
    ///
    /// # Errors
    /// When the commit fails; the transaction is then rolled back as it is dropped.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        DB::TransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    /// Rolls the transaction back.
    ///
    /// # Errors
    /// When the rollback fails.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        DB::TransactionManager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl<DB: Database> Deref for WriteTx<DB> {
    type Target = DB::Connection;

    fn deref(&self) -> &DB::Connection {
        &self.conn
    }
}

impl<DB: Database> DerefMut for WriteTx<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        &mut self.conn
    }
}

impl<DB: Database> Drop for WriteTx<DB> {
    /// A transaction neither committed nor rolled back: its rollback is queued on the
    /// connection, to run before the connection's next statement.
    fn drop(&mut self) {
        if self.open {
            DB::TransactionManager::start_rollback(&mut self.conn);
        }
    }
}

impl<DB: Database> std::fmt::Debug for WriteTx<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").field("open", &self.open).finish()
    }
}
