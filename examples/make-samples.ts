// Writes the sample datasets of examples/ from the problems below (written for ringrl, not taken
// from GSM8K or MATH; answers are computed here, not typed):
//
//   gsm8k-sample.parquet   30 grade-school word problems, numeric answers      (verl's schema)
//   math-sample.parquet    30 competition-style problems, LaTeX answers        (verl's schema)
//   math-sample.jsonl      the same 30 problems as slime/AReaL rows            ({prompt, label})
//
// verl's schema, as its data preprocessors write it: `data_source` (string), `prompt` (a list of
// {content, role} structs), `ability` (string), `reward_model` ({ground_truth, style} struct),
// `extra_info` (struct). Run: npx tsx examples/make-samples.ts (hyparquet-writer, a
// devDependency, writes the Parquet files).
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetWriteBuffer } from 'hyparquet-writer';

/** The instruction verl's MATH preprocessing appends; used for both sets, since the math verifier reads \boxed{}. */
export const INSTRUCTION = "Let's think step by step and output the final answer within \\boxed{}.";

export interface VerlRow {
  data_source: string;
  prompt: { role: string; content: string }[];
  ability: string;
  reward_model: { style: string; ground_truth: string };
  extra_info: Record<string, string | bigint>;
}

const text = (name: string) =>
  ({ name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }) as const;
const int64 = (name: string) => ({ name, type: 'INT64', repetition_type: 'OPTIONAL' }) as const;

/** A Parquet file in verl's schema (the nested types pandas/pyarrow write: a list of structs, structs). */
export function verlParquet(rows: VerlRow[]): ArrayBuffer {
  const extraKeys = Object.keys(rows[0]!.extra_info);
  const columns = ['data_source', 'prompt', 'ability', 'reward_model', 'extra_info'] as const;
  return parquetWriteBuffer({
    columnData: columns.map((name) => ({ name, data: rows.map((r) => r[name]) })),
    schema: [
      { name: 'root', num_children: columns.length },
      text('data_source'),
      { name: 'prompt', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', repetition_type: 'OPTIONAL', num_children: 2 },
      text('content'),
      text('role'),
      text('ability'),
      { name: 'reward_model', repetition_type: 'OPTIONAL', num_children: 2 },
      text('ground_truth'),
      text('style'),
      { name: 'extra_info', repetition_type: 'OPTIONAL', num_children: extraKeys.length },
      ...extraKeys.map((k) => (typeof rows[0]!.extra_info[k] === 'bigint' ? int64(k) : text(k))),
    ],
  });
}

/** A number as an answer: at most 6 decimals, no float noise (4.5 * 6 * 1.8 → "48.6"). */
const num = (x: number) => String(Math.round(x * 1e6) / 1e6);

/** Grade-school word problems: [question, worked solution, answer]. */
const GSM8K: [string, string, number][] = [
  [
    'Maya buys 4 packs of pencils with 12 pencils in each pack. She gives 15 pencils to her classmates. How many ' +
      'pencils does she have left?',
    '4 * 12 = 48 pencils; 48 - 15 = 33.',
    4 * 12 - 15,
  ],
  [
    'A bakery sells muffins for $3 each and cookies for $1.50 each. Tom buys 6 muffins and 8 cookies. How many ' +
      'dollars does he spend?',
    '6 * 3 = 18; 8 * 1.5 = 12; 18 + 12 = 30.',
    6 * 3 + 8 * 1.5,
  ],
  [
    'A train travels at 80 km per hour for 3 hours and then at 60 km per hour for 2 hours. How many kilometres ' +
      'does it travel in total?',
    '80 * 3 = 240; 60 * 2 = 120; 240 + 120 = 360.',
    80 * 3 + 60 * 2,
  ],
  [
    'Lena reads 25 pages a day. Her book has 340 pages and she has already read 90 of them. How many more days ' +
      'does she need to finish the book?',
    '340 - 90 = 250 pages left; 250 / 25 = 10 days.',
    (340 - 90) / 25,
  ],
  [
    'A farmer has 7 rows of apple trees with 14 trees in each row. Each tree gives 30 apples. How many apples does ' +
      'the farmer harvest?',
    '7 * 14 = 98 trees; 98 * 30 = 2940.',
    7 * 14 * 30,
  ],
  [
    'Sam earns $18 per hour and works 6 hours a day for 5 days. He spends a quarter of his earnings on rent. How ' +
      'many dollars does he have left?',
    '18 * 6 * 5 = 540; a quarter is 135; 540 - 135 = 405.',
    (18 * 6 * 5 * 3) / 4,
  ],
  [
    'A class has 32 students. Three eighths of them walk to school and the rest take the bus. How many students ' +
      'take the bus?',
    '32 * 3 / 8 = 12 walk; 32 - 12 = 20.',
    32 - (32 * 3) / 8,
  ],
  [
    'A water tank holds 1200 litres and is 35% full. How many more litres are needed to fill it?',
    '65% of 1200 = 780.',
    (1200 * 65) / 100,
  ],
  [
    'Carl has 16 marbles. Ben has 9 more marbles than Carl, and Jake has twice as many as Ben. How many marbles do ' +
      'the three of them have together?',
    'Ben 25, Jake 50; 16 + 25 + 50 = 91.',
    16 + 25 + 50,
  ],
  [
    'A shirt costs $40. It is on sale for 25% off, and then a $5 coupon is applied. What is the final price in ' +
      'dollars?',
    '40 * 0.75 = 30; 30 - 5 = 25.',
    (40 * 75) / 100 - 5,
  ],
  [
    'Nora plants 3 seeds in each of 24 pots. Five sixths of the seeds sprout. How many seeds sprout?',
    '3 * 24 = 72 seeds; 72 * 5 / 6 = 60.',
    (3 * 24 * 5) / 6,
  ],
  [
    'A movie is 2 hours and 15 minutes long. Ali has watched 48 minutes of it. How many minutes are left?',
    '2 h 15 min = 135 min; 135 - 48 = 87.',
    135 - 48,
  ],
  [
    'A box holds 6 eggs. A restaurant uses 150 eggs a day. How many boxes of eggs does it need for one week?',
    '150 * 7 = 1050 eggs; 1050 / 6 = 175.',
    (150 * 7) / 6,
  ],
  [
    'A cyclist rides 12 km to work and 12 km back each day, 5 days a week. How many kilometres does she ride in 4 ' +
      'weeks?',
    '24 km a day; 24 * 5 = 120 a week; 120 * 4 = 480.',
    12 * 2 * 5 * 4,
  ],
  [
    'Emma has $250. She buys 3 books at $17 each and a bag for $64. How many dollars does she have left?',
    '3 * 17 = 51; 250 - 51 - 64 = 135.',
    250 - 3 * 17 - 64,
  ],
  [
    'A rectangular garden is 18 m long and 12 m wide. Fencing costs $7 per metre. How many dollars does it cost to ' +
      'fence the whole garden?',
    'Perimeter 2 * (18 + 12) = 60 m; 60 * 7 = 420.',
    2 * (18 + 12) * 7,
  ],
  [
    'There are 45 red balloons and three times as many blue balloons at a party. Then 38 balloons pop. How many ' +
      'balloons are left?',
    '45 * 3 = 135 blue; 45 + 135 = 180; 180 - 38 = 142.',
    45 + 45 * 3 - 38,
  ],
  [
    'A printer prints 24 pages per minute. How many minutes does it take to print 18 copies of a 40-page report?',
    '18 * 40 = 720 pages; 720 / 24 = 30.',
    (18 * 40) / 24,
  ],
  [
    'Leo is 4 years older than his sister. In 6 years, the sum of their ages will be 40. How old is Leo now?',
    'Sister s: (s + 10) + (s + 6) = 40, s = 12; Leo is 16.',
    16,
  ],
  [
    'A store had 480 bottles of juice. It sold a quarter of them on Monday and a third of the remaining bottles on ' +
      'Tuesday. How many bottles are left?',
    '480 - 120 = 360; 360 - 120 = 240.',
    480 - 120 - 120,
  ],
  [
    'A pipe fills a pool at 15 litres per minute. How many hours does it take to fill a 5400-litre pool?',
    '5400 / 15 = 360 minutes = 6 hours.',
    5400 / 15 / 60,
  ],
  [
    'Priya saves $35 every week. She already has $70. How many weeks does she need to save to afford a bike that ' +
      'costs $420?',
    '420 - 70 = 350; 350 / 35 = 10.',
    (420 - 70) / 35,
  ],
  [
    'A bus has 52 seats and starts empty. At the first stop 19 people get on; at the second stop 23 get on and 7 ' +
      'get off. How many seats are empty now?',
    '19 + 23 - 7 = 35 riders; 52 - 35 = 17.',
    52 - (19 + 23 - 7),
  ],
  [
    'Each of 5 friends orders a pizza cut into 8 slices. Together they eat 31 slices. How many slices are left?',
    '5 * 8 = 40; 40 - 31 = 9.',
    5 * 8 - 31,
  ],
  [
    'A car uses 6 litres of fuel per 100 km, and fuel costs $1.80 per litre. How many dollars does the fuel for a ' +
      '450 km trip cost?',
    '450 km needs 27 litres; 27 * 1.8 = 48.6.',
    4.5 * 6 * 1.8,
  ],
  [
    'A school orders 12 boxes of markers with 24 markers in each box and shares them equally among 36 classrooms. ' +
      'How many markers does each classroom get?',
    '12 * 24 = 288; 288 / 36 = 8.',
    (12 * 24) / 36,
  ],
  [
    'Mia runs 3 laps of a 400 m track on Monday and 5 laps on Wednesday. How many kilometres does she run in total?',
    '8 laps * 400 m = 3200 m = 3.2 km.',
    (8 * 400) / 1000,
  ],
  [
    'A factory makes 250 toys an hour, and 4% of them are faulty. How many good toys are made in an 8-hour shift?',
    '250 * 8 = 2000; 96% of 2000 = 1920.',
    (250 * 8 * 96) / 100,
  ],
  [
    'Omar buys 3 kg of apples at $2.40 per kg and 2 kg of bananas at $1.10 per kg. He pays with a $20 note. How ' +
      'many dollars of change does he get?',
    '3 * 2.4 = 7.2; 2 * 1.1 = 2.2; 20 - 9.4 = 10.6.',
    20 - 3 * 2.4 - 2 * 1.1,
  ],
  [
    'A library has 1350 books. 40% of them are fiction, and one third of the other books are science books. How ' +
      'many science books are there?',
    '60% of 1350 = 810 non-fiction; 810 / 3 = 270.',
    (1350 * 60) / 100 / 3,
  ],
];

/** Competition-style problems: [problem, answer in LaTeX]. */
const MATH: [string, string][] = [
  ['Simplify $\\frac{3}{4} + \\frac{5}{6}$.', '\\frac{19}{12}'],
  ['Solve for $x$: $2x + 7 = 3x - 5$.', '12'],
  ['Simplify $\\sqrt{50} - \\sqrt{8}$. Express your answer in simplest radical form.', '3\\sqrt{2}'],
  ['Find the sum of the roots of $x^2 - 7x + 10 = 0$.', '7'],
  ['Compute $\\dbinom{8}{3}$.', '56'],
  ['What is the greatest common divisor of $84$ and $126$?', '42'],
  ['Evaluate $\\log_2 64$.', '6'],
  ['The interior angles of a convex polygon add up to $1260^\\circ$. How many sides does the polygon have?', '9'],
  ['If $f(x) = 3x^2 - 2x + 1$, what is $f(-2)$?', '17'],
  ['What is the slope of the line through $(1, -2)$ and $(4, 7)$?', '3'],
  ['Simplify $(2 + 3i)(1 - i)$, where $i^2 = -1$.', '5+i'],
  ['What is the remainder when $2^{10}$ is divided by $7$?', '2'],
  ['A right triangle has legs of length $9$ and $12$. What is the length of its hypotenuse?', '15'],
  ['A circle has circumference $10\\pi$. What is its area? Express your answer in terms of $\\pi$.', '25\\pi'],
  ['How many positive divisors does $72$ have?', '12'],
  ['Compute $\\sum_{k=1}^{20} k$.', '210'],
  ['Express $0.\\overline{36}$ as a common fraction in lowest terms.', '\\frac{4}{11}'],
  ['If $\\frac{x}{3} + \\frac{x}{6} = 5$, what is $x$?', '10'],
  ['What is the distance between the points $(-1, 2)$ and $(5, 10)$?', '10'],
  ['What is the product of the solutions of $x^2 + 5x - 14 = 0$?', '-14'],
  ['Rationalize the denominator of $\\frac{6}{\\sqrt{3}}$ and simplify.', '2\\sqrt{3}'],
  ['What is the $15^{\\text{th}}$ term of the arithmetic sequence $5, 11, 17, \\ldots$?', '89'],
  ['In how many ways can $5$ different books be arranged in a row on a shelf?', '120'],
  ['Find $x$ if $3^{x+1} = 243$.', '4'],
  ['What is the least common multiple of $18$ and $30$?', '90'],
  ['Evaluate $\\left(\\frac{2}{3}\\right)^{-2}$.', '\\frac{9}{4}'],
  ['If $\\sin\\theta = \\frac{3}{5}$ and $\\theta$ is acute, what is $\\cos\\theta$?', '\\frac{4}{5}'],
  ['What is the vertex of the parabola $y = x^2 - 6x + 11$? Express your answer as an ordered pair.', '(3,2)'],
  [
    'A fair six-sided die is rolled twice. What is the probability that the two numbers add up to $7$? Express ' +
      'your answer as a common fraction.',
    '\\frac{1}{6}',
  ],
  ['Solve $|x - 3| < 5$. Express your answer in interval notation.', '(-2,8)'],
];

export function gsm8kRows(): VerlRow[] {
  return GSM8K.map(([question, solution, answer], i) => ({
    data_source: 'openai/gsm8k',
    prompt: [{ role: 'user', content: `${question} ${INSTRUCTION}` }],
    ability: 'math',
    reward_model: { style: 'rule', ground_truth: num(answer) },
    extra_info: { split: 'train', index: BigInt(i), answer: `${solution}\n#### ${num(answer)}`, question },
  }));
}

export function mathRows(): VerlRow[] {
  return MATH.map(([problem, answer], i) => ({
    data_source: 'DigitalLearningGmbH/MATH-lighteval',
    prompt: [{ role: 'user', content: `${problem} ${INSTRUCTION}` }],
    ability: 'math',
    reward_model: { style: 'rule', ground_truth: answer },
    extra_info: { split: 'train', index: BigInt(i) },
  }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const here = dirname(fileURLToPath(import.meta.url));
  writeFileSync(join(here, 'gsm8k-sample.parquet'), Buffer.from(verlParquet(gsm8kRows())));
  writeFileSync(join(here, 'math-sample.parquet'), Buffer.from(verlParquet(mathRows())));
  const slime = mathRows().map((r) => JSON.stringify({ prompt: r.prompt, label: r.reward_model.ground_truth }));
  writeFileSync(join(here, 'math-sample.jsonl'), slime.join('\n') + '\n');
  console.log(`wrote ${here}/: gsm8k-sample.parquet (${GSM8K.length} rows), math-sample.parquet and .jsonl (${MATH.length} rows)`);
}
