// Built-in tasks: verifiers on hand-written right and wrong answers, teacher responses that
// verify, disjoint train/test splits, determinism, and the long tail of reasoning lengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arithmetic, countdown, getTask, lengthStats, taskProblems, thinks } from '../../src/data/tasks/index.ts';
import { evaluateExpression, winningPath } from '../../src/data/tasks/countdown.ts';
import { arithmeticProblem } from '../../src/data/tasks/arithmetic.ts';
import { splitOf } from '../../src/data/tasks/format.ts';

const A = '47*3'; // 141
const ok = (answer: string) => `<think>\n7*3+0=21\n</think>\n\\boxed{${answer}}`;

test('arithmetic verifier: right answers', () => {
  for (const response of [
    ok('141'),
    `  ${ok('141')}\n`,
    '<think>x</think>\\boxed{141}',
    '<think></think> \\boxed{ 141 }',
  ]) {
    const v = arithmetic.verify(response, '141');
    assert.equal(v.reward, 1, `${JSON.stringify(response)}: ${v.reason}`);
    assert.equal(v.extracted, '141');
  }
  assert.equal(arithmetic.verify(ok('-5'), '-5').reward, 1);
  void A;
});

test('arithmetic verifier: wrong answers, each with its reason', () => {
  const cases: [string, RegExp][] = [
    [ok('142'), /wrong answer 142 \(expected 141\)/],
    [ok('14 1'), /not an integer/],
    [ok('141.0'), /not an integer/],
    [ok('1,41'), /not an integer/],
    [ok('x'), /not an integer/],
    ['7*3=21\n</think>\n\\boxed{141}', /missing <think>/], // missing <think>
    ['\\boxed{141}', /missing <think>/],
    ['<think>\n7*3=21\n\\boxed{141}', /missing <\/think>/],
    ['<think>\n7*3=21\n</think>\n', /missing \\boxed/],
    ['<think>a</think>\n\\boxed{141', /malformed \\boxed\{ \(unbalanced/], // malformed box
    ['<think>a</think>\n\\boxed141', /malformed \\boxed \(expected/],
    ['<think>a</think>\n\\boxed{}', /empty \\boxed/],
    ['<think>a</think>\n\\boxed{141} and that is final', /extra text after \\boxed/], // extra text
    ['<think>a</think>\nso \\boxed{141}', /text between <\/think> and \\boxed/],
    ['<think>a</think>\n\\boxed{141}\\boxed{141}', /extra text after/],
    ['<think>a <think> b</think>\\boxed{141}', /nested <think>/],
    ['', /missing <think>/],
  ];
  for (const [response, reason] of cases) {
    const v = arithmetic.verify(response, '141');
    assert.equal(v.reward, 0, `should be wrong: ${JSON.stringify(response)}`);
    assert.match(v.reason, reason, JSON.stringify(response));
  }
});

const gt = JSON.stringify({ numbers: [3, 7, 25], target: 46 });
const cd = (expr: string) => `<think>\n3*7=21 [25 21]\n 25+21=46 !\n</think>\n\\boxed{${expr}}`;

test('countdown verifier: right answers (any expression of the right value using each number once)', () => {
  for (const expr of ['3*7+25', '25+3*7', '(3*7)+25', '25 + 7 × 3', '7*3+25', '25+7\\times 3']) {
    const v = countdown.verify(cd(expr), gt);
    assert.equal(v.reward, 1, `${expr}: ${v.reason}`);
  }
  // Fractions in between are fine when the result is exact.
  assert.equal(countdown.verify(cd('(7-3/3)*2'), JSON.stringify({ numbers: [7, 3, 3, 2], target: 12 })).reward, 1);
});

test('countdown verifier: wrong answers, each with its reason', () => {
  const cases: [string, RegExp][] = [
    [cd('3*7+24'), /uses \[3,7,24\]; expected each of \[3,7,25\]/],
    [cd('3*7'), /uses \[3,7\]/], // a number unused
    [cd('3*7+25+3'), /uses \[3,3,7,25\]/], // a number twice
    [cd('25+7+3'), /evaluates to 35, not 46/],
    [cd('25/7+3'), /evaluates to 46\/7, not 46/],
    [cd('3*(7+25'), /invalid expression: expected '\)'/],
    [cd('3**7+25'), /invalid expression/],
    [cd('3*7+25='), /invalid expression/],
    [cd('46'), /uses \[46\]/],
    ['3*7+25=46 \\boxed{3*7+25}', /missing <think>/],
    ['<think>3*7+25</think>\\boxed{3*7+25', /malformed \\boxed/],
    ['<think>3*7+25</think>\\boxed{3*7+25}.', /extra text after/],
    ['<think>3*7+25</think>', /missing \\boxed/],
  ];
  for (const [response, reason] of cases) {
    const v = countdown.verify(response, gt);
    assert.equal(v.reward, 0, `should be wrong: ${response}`);
    assert.match(v.reason, reason, response);
  }
});

test('countdown expression evaluator is exact', () => {
  assert.deepEqual(evaluateExpression('1/3+1/3+1/3'), { value: [1n, 1n], numbers: [1, 3, 1, 3, 1, 3] });
  assert.ok('error' in evaluateExpression('5/(3-3)'));
  assert.ok('error' in evaluateExpression(''));
});

for (const name of ['arithmetic', 'countdown']) {
  const task = getTask(name);
  test(`${name}: every teacher response verifies, worked and brief, at every difficulty`, () => {
    for (let d = 1; d <= task.maxDifficulty; d++) {
      for (const p of taskProblems(name, 60, { split: 'train', difficulty: d, seed: 3 })) {
        for (const response of [p.response, p.brief]) {
          const v = task.verify(response, p.answer);
          assert.equal(v.reward, 1, `${p.id} (difficulty ${d}): ${v.reason}\n${response}`);
          assert.ok(thinks(response) && response.startsWith('<think>\n'), response);
        }
        assert.ok(
          p.brief.length < p.response.length || p.brief === p.response,
          `${p.id}: the brief scratchpad is no longer than the worked one`,
        );
      }
    }
  });

  test(`${name}: train and test never overlap, and the stream is deterministic in the seed`, () => {
    const d = task.defaultDifficulty;
    const train = taskProblems(name, 1500, { split: 'train', difficulty: d, seed: 1 });
    const test_ = taskProblems(name, 300, { split: 'test', difficulty: d, seed: 2 });
    const trainIds = new Set(train.map((p) => p.id));
    assert.equal(test_.filter((p) => trainIds.has(p.id)).length, 0);
    assert.ok(train.every((p) => splitOf(name, p.id) === 'train'));
    assert.ok(test_.every((p) => splitOf(name, p.id) === 'test'));
    assert.deepEqual(taskProblems(name, 20, { split: 'train', difficulty: d, seed: 1 }), train.slice(0, 20));
    assert.notDeepEqual(
      taskProblems(name, 20, { split: 'train', difficulty: d, seed: 9 }).map((p) => p.id),
      train.slice(0, 20).map((p) => p.id),
    );
    // Offsets address the same stream (what resuming relies on).
    assert.deepEqual(
      taskProblems(name, 5, { split: 'train', difficulty: d, seed: 1, offset: 10 }),
      train.slice(10, 15),
    );
  });

  test(`${name}: reasoning lengths have a long tail (max >= 3x median)`, () => {
    const lengths = taskProblems(name, 1000, { split: 'train', difficulty: task.defaultDifficulty, seed: 0 }).map(
      (p) => p.response.length,
    );
    const s = lengthStats(lengths);
    assert.ok(s.max >= 3 * s.p50, `p50 ${s.p50}, p90 ${s.p90}, max ${s.max}`);
    assert.ok(s.p90 > 1.5 * s.p50, `p50 ${s.p50}, p90 ${s.p90}`);
  });
}

test('difficulty out of range and unknown task are one-line errors', () => {
  assert.throws(
    () => taskProblems('arithmetic', 1, { split: 'train', difficulty: 7 }),
    /^RingrlError: task arithmetic: difficulty must be an integer in \[1, 6\], got 7$/,
  );
  assert.throws(() => getTask('sudoku'), /unknown task 'sudoku'; expected one of arithmetic, countdown/);
});

test('arithmetic teacher: the scratchpad works digit by digit', () => {
  const p = arithmetic.generate(0, { difficulty: 1, split: 'train', seed: 0 });
  assert.match(p.prompt, /^\d+[+*]\d+=\n$/);
  const [a, op, b] = p.id.split(/([+*])/);
  const expected = op === '+' ? BigInt(a!) + BigInt(b!) : BigInt(a!) * BigInt(b!);
  assert.equal(p.answer, expected.toString());
});

test('arithmetic brief scratchpad: partial products and running sums, opening like the worked one', () => {
  const brief = arithmetic.generate(0, { difficulty: 1, split: 'train', seed: 0 }).brief;
  assert.match(brief, /^<think>\n\d+[+*]\d+=\d+\n/);
  const q = arithmeticProblem(457n, '*', 68n);
  assert.equal(q.brief, '<think>\n457*8=3656\n457*60=27420\n3656+27420=31076\n</think>\n\\boxed{31076}');
  assert.ok(q.response.startsWith('<think>\n457*8|0|\n'), 'the two diverge at the token after 457*8');
  assert.equal(arithmeticProblem(4567n, '+', 890n).brief, '<think>\n4567+890=5457\n</think>\n\\boxed{5457}');
  assert.equal(
    arithmeticProblem(12n, '*', 305n).brief,
    '<think>\n12*5=60\n12*300=3600\n60+3600=3660\n</think>\n\\boxed{3660}',
    'a zero digit adds no line',
  );
});

test('countdown brief scratchpad: the winning path of the search, without the dead ends', () => {
  assert.deepEqual(winningPath(['6*2=12 [4 12]', ' 12+4=16', ' 12-4=8', '6+4=10 [2 10]', ' 10*2=20', ' 10+2=12 !']), [
    '6+4=10 [2 10]',
    ' 10+2=12 !',
  ]);
  const deep = ['9+3=12 [5 2 12]', ' 12+5=17 [2 17]', '  17+2=19', ' 12-5=7 [2 7]', '  7*2=14 !'];
  assert.deepEqual(winningPath(deep), ['9+3=12 [5 2 12]', ' 12-5=7 [2 7]', '  7*2=14 !']);
});

test('task source: data.num_train problems repeated in epochs; the cursor resumes the stream', async () => {
  const { taskSource } = await import('../../src/data/source.ts');
  const s = taskSource('arithmetic', { difficulty: 2, seed: 4, numTrain: 3 });
  const ids = Array.from({ length: 7 }, () => s.next().source);
  assert.deepEqual(ids.slice(3, 6), ids.slice(0, 3));
  assert.equal(new Set(ids).size, 3);
  const endless = taskSource('arithmetic', { difficulty: 2, seed: 4 });
  const first = Array.from({ length: 5 }, () => endless.next().source);
  const resumed = taskSource('arithmetic', { difficulty: 2, seed: 4 });
  resumed.cursor = 3;
  assert.equal(resumed.next().source, first[3]);
});

test('task source: data.no_think_fraction answers that share of problems without a scratchpad, the same ones every epoch', async () => {
  const { taskSource } = await import('../../src/data/source.ts');
  const s = taskSource('arithmetic', { difficulty: 2, seed: 4, numTrain: 400, noThinkFraction: 0.7 });
  const first = Array.from({ length: 400 }, () => s.next());
  const direct = first.filter((e) => !thinks(e.response!));
  assert.ok(Math.abs(direct.length / 400 - 0.7) < 0.07, `${direct.length} of 400 answered directly`);
  for (const e of direct) {
    assert.equal(e.response, `<think>\n</think>\n\\boxed{${e.answer}}`);
    assert.equal(arithmetic.verify(e.response!, e.answer).reward, 1);
  }
  const again = Array.from({ length: 400 }, () => s.next().response);
  assert.deepEqual(
    again,
    first.map((e) => e.response),
  );
  const thinking = taskSource('arithmetic', { difficulty: 2, seed: 4, numTrain: 400 });
  first.forEach((e) => {
    const full = thinking.next();
    assert.equal(full.source, e.source);
    if (!direct.includes(e)) assert.equal(e.response, full.response);
  });
});

test('task source: data.brief_fraction gives that share the brief scratchpad, drawn after the no-think share', async () => {
  const { taskSource } = await import('../../src/data/source.ts');
  const problems = taskProblems('arithmetic', 400, { split: 'train', difficulty: 2, seed: 4 });
  const draw = (briefFraction: number) => {
    const s = taskSource('arithmetic', { difficulty: 2, seed: 4, numTrain: 400, noThinkFraction: 0.3, briefFraction });
    return Array.from({ length: 400 }, () => s.next());
  };
  const hybrid = draw(0);
  const mixed = draw(0.5);
  const count = (pick: (e: (typeof mixed)[number], i: number) => boolean) => mixed.filter(pick).length;
  assert.equal(
    count((e, i) => e.response === hybrid[i]!.response && !thinks(e.response!)),
    count((e) => !thinks(e.response!)),
    'the same problems skip thinking as without a brief share',
  );
  const brief = count((e, i) => e.response === problems[i]!.brief && e.response !== problems[i]!.response);
  const worked = count((e, i) => e.response === problems[i]!.response && e.response !== problems[i]!.brief);
  assert.ok(
    Math.abs(brief / 400 - 0.5) < 0.07 && Math.abs(worked / 400 - 0.2) < 0.06,
    `${brief} brief, ${worked} worked of 400`,
  );
  assert.throws(
    () => taskSource('arithmetic', { noThinkFraction: 0.6, briefFraction: 0.5 }),
    /^RingrlError: data: no_think_fraction \+ brief_fraction must be at most 1, got 0.6 \+ 0.5$/,
  );
});

test('thinks: a <think> block with more than whitespace', () => {
  assert.equal(thinks(ok('141')), true);
  assert.equal(thinks('<think>\n</think>\n\\boxed{141}'), false);
  assert.equal(thinks('<think> \n\t</think>\\boxed{1}'), false);
  assert.equal(thinks('\\boxed{141}'), false, 'no block');
  assert.equal(thinks('<think>\n7*3+0=21'), true, 'cut before </think>');
  assert.equal(thinks('<think>\n'), false);
});
