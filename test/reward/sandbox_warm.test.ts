// The adversarial sandbox suite against the warm pool (zygotes and pre-started node runners).
import { suite } from './sandbox_suite.ts';

suite('warm pool', { warm: true, pythonWorkers: 2, nodeSpares: 1 });
