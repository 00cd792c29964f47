"""The ground floor every edgewatch package stands on: settings files and environment (`config`),
private data files (`files`), logging with secret redaction (`logsetup`), process tuning (`process`),
the thresholds file (`thresholds_file`), the options every command spells alike (`cli`), how a
command fails in one line (`failure`), listening ports (`ports`), child processes that end with
their parent (`lifeline`) and the version. Of edgewatch it imports only the pure `rules/` (to
validate thresholds); everything else may import it, and it imports nothing above."""

__version__ = "0.1.0"
