"""The fairness review's rules, as pure functions on plain data (numpy arrays, tuples, frozen dataclasses).

The service (`fablab.services.fairness`) loads the period into a `period.Period` and assembles the review;
everything it shows is computed here, in this order:

- `clock`: UTC epoch seconds on the lab's wall clock (DST changes found once), and the lab week.
- `period`: the period's facts as the service loads them (bookings as columns, clipped usage sessions,
  unmet wishes, waitlist counts) and the small rules applied while loading.
- `tally`: who used and requested what: the usage rules applied to bookings, sessions and wishes, per
  member, machine and week.
- `figures`: the lab's figures from the tally: population, Gini, Lorenz, Jain, worst off, ranks,
  utilisation per machine, totals and rates, the weekly trend.
- `opening`: a booking policy's weekly hours as the capacity model's opening hours.
- `heatmap`: requested, open and unmet hours by hour of the week.
- `replay`: what one more machine, or longer opening hours, would have met of the unmet demand.
- `draws`: the request windows' draws re-run and checked, and lottery wins against expectation.

No module here reads the clock, the database or the request: `now` and the data are arguments.
"""
