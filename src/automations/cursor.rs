//! A scan's cursor kept in Odoo (`whatsapp.cursor`, one record per name): the time up to which
//! the records were all handled, so that a restart starts there (minus the overlap) rather than
//! from the beginning or from now.

use crate::odoo::{format_datetime, parse_datetime, Domain, OdooClient, OdooError, SearchOptions};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

const CURSOR_MODEL: &str = "whatsapp.cursor";

/// One named cursor, as read from Odoo and written back.
#[derive(Debug, Default)]
pub struct StoredCursor {
    /// The time stored, `None` before the first complete scan.
    pub at: Option<DateTime<Utc>>,
    record: Option<i64>,
    loaded: bool,
}

impl StoredCursor {
    /// True once [`StoredCursor::load`] has read Odoo.
    pub fn loaded(&self) -> bool {
        self.loaded
    }

    /// Reads the cursor `name` (one `search_read`).
    pub async fn load(&mut self, odoo: &OdooClient, name: &str) -> Result<(), OdooError> {
        let rows: Vec<Value> = odoo
            .search_read(
                CURSOR_MODEL,
                &Domain::leaf("name", "=", name),
                &["value"],
                &SearchOptions::new().limit(1),
            )
            .await?;
        if let Some(row) = rows.first() {
            self.record = row.get("id").and_then(Value::as_i64);
            self.at = row
                .get("value")
                .and_then(Value::as_str)
                .and_then(parse_datetime);
        }
        self.loaded = true;
        Ok(())
    }

    /// Stores `at` as the cursor `name` (one `write`, or the `create` of its record).
    pub async fn save(
        &mut self,
        odoo: &OdooClient,
        name: &str,
        at: DateTime<Utc>,
    ) -> Result<(), OdooError> {
        let value = format_datetime(at);
        match self.record {
            Some(id) => {
                odoo.write(CURSOR_MODEL, &[id], &json!({ "value": value }))
                    .await?
            }
            None => {
                let id = odoo
                    .create(CURSOR_MODEL, &json!({"name": name, "value": value}))
                    .await?;
                self.record = Some(id);
            }
        }
        self.at = Some(at);
        Ok(())
    }
}
