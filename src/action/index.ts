// Entry point of the bundled Action (dist/index.js). run() catches everything itself and
// reports through the step status, so there is nothing to handle here.
import { run } from './main';

void run();
