import { neutraliseWorkflowCommands } from '../src/core/log-safety';

const isCommandLine = (line: string) => /^\s*::[a-z-]+/i.test(line);

describe('neutraliseWorkflowCommands', () => {
  it.each([
    ['::warning title=x::forged', ':\u200b:warning title=x:\u200b:forged'],
    ['ok\n  ::add-mask::secret', 'ok\n  :\u200b:add-mask:\u200b:secret'],
    ['::stop-commands::token', ':\u200b:stop-commands:\u200b:token'],
    ['plain text: no commands', 'plain text: no commands'],
    ['a :: b', 'a :\u200b: b'],
  ])('%j becomes %j', (input, output) => {
    expect(neutraliseWorkflowCommands(input)).toBe(output);
  });

  it('leaves no line that the runner would read as a command', () => {
    const hostile = ['::error::x', '\t::set-output name=verdict::pass', ' ::group::g', ':::debug::y'].join('\n');
    expect(hostile.split('\n').some(isCommandLine)).toBe(true);
    expect(neutraliseWorkflowCommands(hostile).split('\n').some(isCommandLine)).toBe(false);
  });
});
