/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl threshold: the daemon's motor threshold procedure (control
 * commands "threshold" and "threshold_status", docs/threshold.md).
 */
#ifndef RPMSCTL_THRESHOLD_H
#define RPMSCTL_THRESHOLD_H

/** Exit status when the procedure ended without a threshold (capped, limit, stopped). */
#define RPMSCTL_THRESHOLD_NOT_FOUND 5

/**
 * Start the procedure with @argv's options, print each probe as it comes
 * and the result; with --stop, stop the one running.
 * @return 0 (found, or stopped by --stop), RPMSCTL_THRESHOLD_NOT_FOUND, or
 *         a control command's exit status (rpmsctl_control.h)
 */
int rpmsctl_threshold_main(int argc, char **argv);

#endif /* RPMSCTL_THRESHOLD_H */
