// The adversarial sandbox suite against cold spawn (a fresh sandbox per run).
import { suite } from './sandbox_suite.ts';

suite('cold spawn', { warm: false });
