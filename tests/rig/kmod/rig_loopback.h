/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rig_loopback.h: test-only wires between gpio-sim lines, for rpmsd's VM
 * rig (tests/rig).
 *
 * What: a module parameter of gpio-sim, loopback=OUT:IN[,OUT:IN...]
 * (line offsets, every chip): whenever output line OUT changes level, or is
 * released, input line IN is driven to the same level exactly as writing
 * its sysfs `pull` attribute would, so a consumer of IN gets a real edge
 * event (irq_sim interrupt, gpiolib-cdev timestamp).
 *
 * Why: a line requested as an output by one process cannot also deliver
 * edge events (the uAPI wants an input, and the line is busy), and gpio-sim
 * has no wire between lines. The rig's monitor (tests/rig/rig_mon.c) and
 * the gpio plugin's confirm input need a loopback, as on a bench where the
 * stimulator's trigger and enable wires are also taken back to input pins.
 *
 * tests/rig/rig.sh #includes this file into Debian's drivers/gpio/gpio-sim.c
 * right after gpio_sim_apply_pull(), and calls rig_loop_follow() after each
 * place that changes an output's level (set, set_multiple,
 * direction_output, free), after the chip lock is dropped. Kernel sources
 * are extracted at test time, never committed.
 */
#ifndef RIG_LOOPBACK_H
#define RIG_LOOPBACK_H

static char *rig_loopback;
module_param_named(loopback, rig_loopback, charp, 0444);
MODULE_PARM_DESC(loopback, "test wiring: OUT:IN[,OUT:IN...]: input IN follows output OUT");

/* Drive every input wired to @offset to @offset's current level. */
static void rig_loop_follow(struct gpio_sim_chip *chip, unsigned int offset)
{
	const char *p = rig_loopback;
	unsigned int out, in;
	int value, n;

	if (!p || !*p) {
		return;
	}
	mutex_lock(&chip->lock);
	value = !!test_bit(offset, chip->value_map);
	mutex_unlock(&chip->lock);
	while (*p) {
		if (sscanf(p, "%u:%u%n", &out, &in, &n) != 2) {
			return;
		}
		if (out == offset && in != offset && in < chip->gc.ngpio) {
			gpio_sim_apply_pull(chip, in, value);
		}
		p += n;
		if (*p == ',') {
			p++;
		}
	}
}

static void rig_loop_follow_mask(struct gpio_sim_chip *chip, unsigned long *mask)
{
	unsigned int bit;

	for_each_set_bit(bit, mask, chip->gc.ngpio) {
		rig_loop_follow(chip, bit);
	}
}

#endif /* RIG_LOOPBACK_H */
