/* SPDX-License-Identifier: MIT */
/*
 * rpmsctl unblind: the statistician opens the sealed audit of a blinded
 * trial (docs/sham.md) with the secret key; every unblind, successful or
 * not, first appends its own record to the audit.
 */
#ifndef RPMSCTL_BLIND_H
#define RPMSCTL_BLIND_H

/**
 * rpmsctl unblind --key SECRET_KEY_FILE [--audit FILE]: print every sealed
 * record of the audit as one JSON line.
 * @return an exit status of rpmsctl_control.h: 0 all opened, 2 usage,
 *         4 a key, audit or record that could not be read or opened
 */
int rpmsctl_blind_unblind(int argc, char **argv);

#endif /* RPMSCTL_BLIND_H */
