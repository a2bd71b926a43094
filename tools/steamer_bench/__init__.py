"""The benchmark (`steamer dev bench`): the figures behind the firmware's goals, from the
same drivers the tests run, run longer."""
