// Text from models, probe files and file names reaches the Action's log. The runner reads a
// line that starts with `::` (after leading whitespace) as a workflow command (`::warning`,
// `::add-mask`, `::stop-commands`), so untrusted text could forge annotations, mask secrets
// or switch command processing off. Breaking every `::` with a zero-width space keeps the
// text readable and makes no line a command.
const ZERO_WIDTH_SPACE = '\u200b';

/** `text` with every `::` broken so that no line of it is a workflow command. */
export function neutraliseWorkflowCommands(text: string): string {
  return text.replace(/::/g, `:${ZERO_WIDTH_SPACE}:`);
}
