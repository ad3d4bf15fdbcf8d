// Operator commands and the executor's answers. Each command sent from the page is remembered
// by its command id with the place it was sent from; every answer (accepted, done, or refused
// with the reason) is shown there. Answers that arrive before the HTTP response are kept.

const WAIT_MS = 15000;
const EARLY_LIMIT = 100;

export class CommandAnswers {
  constructor() {
    this.pending = new Map();
    this.early = new Map();
  }

  /** Show the answers to `commandId` in `target` (an element beside the button that sent it). */
  track(commandId, target) {
    for (const [id, entry] of this.pending) {
      if (entry.target === target && id !== commandId) {
        clearTimeout(entry.timer);
        this.pending.delete(id);
      }
    }
    const entry = { target, answers: new Map(), timer: null };
    this.pending.set(commandId, entry);
    this.render(entry, "sent, waiting for the executor…", "sent");
    entry.timer = setTimeout(() => {
      if (!entry.answers.size) this.render(entry, "no answer from the executor yet: is it running?", "refused");
    }, WAIT_MS);
    for (const data of this.early.get(commandId) ?? []) this.onAnswer(data);
    this.early.delete(commandId);
  }

  /** A `command` event from the live feed. */
  onAnswer(data) {
    const entry = this.pending.get(data.command_id);
    if (!entry) {
      if (this.early.size >= EARLY_LIMIT) this.early.delete(this.early.keys().next().value);
      this.early.set(data.command_id, [...(this.early.get(data.command_id) ?? []), data]);
      return;
    }
    clearTimeout(entry.timer);
    const key = data.symbol ?? "";
    const previous = entry.answers.get(key);
    // A final answer is never replaced by a late "accepted" of the same command and symbol.
    if (previous && previous.outcome !== "accepted" && data.outcome === "accepted") return;
    entry.answers.set(key, data);
    const answers = [...entry.answers.values()];
    const several = answers.some((a) => a.symbol) && answers.length > 1;
    const text = answers
      .map((a) => `${several || (a.symbol && a.command === "close_all") ? `${a.symbol ?? "all"}: ` : ""}${a.outcome}: ${a.reason}`)
      .join(" · ");
    const outcome = answers.some((a) => a.outcome === "refused")
      ? "refused"
      : answers.every((a) => a.outcome === "done" || (a.outcome === "accepted" && !a.symbol && answers.length > 1))
        ? "done"
        : "accepted";
    this.render(entry, text, outcome);
  }

  render(entry, text, outcome) {
    entry.target.textContent = text;
    entry.target.dataset.outcome = outcome;
  }
}
