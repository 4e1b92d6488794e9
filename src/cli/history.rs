//! `modelsync history`: the promotions recorded by the audit tags.

use super::args::{HistoryArgs, OutputFormat};
use super::common::{self, print};
use super::{Exit, GlobalArgs};

use crate::state::history::promotions;

pub async fn run(g: &GlobalArgs, a: HistoryArgs) -> anyhow::Result<Exit> {
    let model = common::read_model(g, &a.model).await?;
    let events = promotions(&model);
    match a.format {
        OutputFormat::Json => print(&format!("{}\n", serde_json::to_string_pretty(&events)?))?,
        OutputFormat::Text => {
            for (target, h) in crate::state::hold::holds(&model) {
                let what = crate::plan::describe::target_text(&target);
                print(&format!("held: {what} at {}\n", h.describe()))?;
            }
            if events.is_empty() {
                print(&format!(
                    "No promotions of {} recorded by modelsync.\n",
                    model.name
                ))?;
            }
            for e in &events {
                print(&format!("{}\n", crate::state::history::line(e)))?;
            }
        }
    }
    Ok(Exit::Ok)
}
